"""Indexes over reference signals and the rules that turn hits into matches."""
