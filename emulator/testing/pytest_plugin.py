"""amlemu's pytest plugin (registered under ``pytest11``): filled in by the harness change."""
