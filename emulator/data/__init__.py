"""Data assets and datastores: registered data, and the workspace's default datastores as folders."""

#: the kinds of data asset (azure-ai-ml's AssetTypes for data): one file, a folder, a folder with an MLTable file
DATA_TYPES = ("uri_file", "uri_folder", "mltable")
