"""Environments: curated names, registered versions, and what a job runs in."""
