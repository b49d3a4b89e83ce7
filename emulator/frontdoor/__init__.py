"""The REST front door: the real azure-ai-ml ``MLClient`` (and ``az``, and ``mlflow``) talking to amlemu.

``amlemu serve`` runs one process that answers what Azure's endpoints answer, the way
Azurite does for Azure Storage: the cloud metadata (:mod:`.metadata`), a managed-identity
token endpoint (:mod:`.tokens`), the ARM control plane over HTTPS with a certificate from
a local CA (:mod:`.certificates`), the discovery document and run history, MLflow, and a
blob service over the workspace store's own files (:mod:`.blobs`). ``amlemu env`` prints the
variables that point the SDK at it (:mod:`.environment`).

Each route module is HTTP glue only, in the shape of moto's ``responses.py``: it parses the
request into the SDK's own REST model, calls the local backend (the same engine functions as
``connect()`` and the CLI), and renders the answer with the SDK's REST models, so every
answer deserializes in ``MLClient`` by construction.
"""
