"""amlemu studio: the workspace in a browser, as Azure ML studio shows it (filled in by the studio change)."""
