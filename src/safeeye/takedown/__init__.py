"""Takedown: the recipients directory, notices, evidence packages, connectors, batches,
deadlines and rechecks: everything between a confirmed match and the content gone."""
