"""The command-line edges, one module per group of commands (``cli.py`` assembles them)."""
