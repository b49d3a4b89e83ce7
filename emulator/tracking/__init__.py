"""MLflow tracking for jobs, as Azure ML workspaces provide it."""
