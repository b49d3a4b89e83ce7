"""Computes: clusters (``clusters``), instances (``instances``), their nodes and queue (``nodes``),
VM sizes (``sizes``), multi-node processes (``distribution``) and attached Kubernetes clusters
(``kubernetes``); ``service`` is the entry point the front doors call."""
