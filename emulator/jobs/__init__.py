"""Jobs: specs, submission, the per-job supervisor, streaming."""
