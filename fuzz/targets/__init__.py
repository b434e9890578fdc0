"""One module per parser, each with ``test_one_input(data: bytes)``; ``fuzz/run.py`` runs them.

A target lets through only the errors its parser documents (a ``MediaError``, an ``XmlRejected``
...): any other exception, a hang past the per-input timeout or a memory blow-up is a finding.
"""
