"""Pipeline jobs: steps run as child command jobs, in dependency order, by a detached orchestrator."""
