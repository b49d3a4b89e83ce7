"""AutoML jobs (classification, regression): a parent job whose orchestrator runs trials as child jobs."""
