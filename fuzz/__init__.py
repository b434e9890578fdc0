"""Fuzz targets (atheris) for the parsers of untrusted bytes that safeeye wrote; see README.md."""
