"""Computes: attached Kubernetes inference clusters (``kubernetes``); clusters and instances come next."""
