"""The model registry: versioned models from local paths and job outputs."""
