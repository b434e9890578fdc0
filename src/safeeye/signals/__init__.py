"""What a scan derives from media: one module per signal, each behind the interface in ``base``."""
