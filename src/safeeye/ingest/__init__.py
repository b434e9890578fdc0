"""Sources and fetching: where media comes from, fetched safely, with evidence."""
