"""Sweep jobs: hyperparameter search over child command jobs, run by a detached orchestrator."""
