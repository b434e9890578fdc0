"""Review: what the scanner matched, for the people who confirm or reject it."""
