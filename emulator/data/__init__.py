"""Data assets and datastores: registered data, and the workspace's default datastores as folders."""
