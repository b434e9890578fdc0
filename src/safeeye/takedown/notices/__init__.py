"""Deletion notices: the legal routes they rest on, the language they are written in, and their
text from templates and translation catalogs."""
