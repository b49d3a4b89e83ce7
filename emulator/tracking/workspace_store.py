"""The workspace's tracking store as MLflow itself opens it: MLflow's file store, naming experiments as jobs do.

MLflow's server handlers (what the front door serves on the workspace's tracking URI) need
a store object, not files; this is MLflow's own ``FileStore`` over the workspace's
``mlruns`` folder, so a run logged over HTTP is the same files a job or
:mod:`.filestore` writes, and the reverse.

One difference from a plain ``FileStore``: a new experiment takes the id the workspace's
records give its name (the id jobs use), not MLflow's random one, so ``mlflow.set_experiment``
over HTTP and a job in that experiment share one experiment instead of making two of the
same name.

Imports MLflow (about a second): only the front door imports this module, on its first
MLflow request.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE
from mlflow.store.tracking.file_store import FileStore
from mlflow.utils.validation import (
    _validate_experiment_artifact_location_length,
    _validate_experiment_name,
    _validate_experiment_tag,
)

_opening = threading.Lock()


class WorkspaceFileStore(FileStore):
    """MLflow's file store over ``mlruns``; ``experiment_id(name)`` gives (and records) a new experiment's id."""

    def __init__(self, mlruns: Path, experiment_id: Callable[[str], int | str]):
        # MLflow refuses to open a file store unless MLFLOW_ALLOW_FILE_STORE is set (it checks only here): the
        # workspace's store is one by design, so it is allowed for this construction only, not for the process
        with _opening:
            before = os.environ.get(MLFLOW_ALLOW_FILE_STORE.name)
            os.environ[MLFLOW_ALLOW_FILE_STORE.name] = "true"
            try:
                super().__init__(mlruns.as_uri())
            finally:
                if before is None:
                    os.environ.pop(MLFLOW_ALLOW_FILE_STORE.name, None)
                else:
                    os.environ[MLFLOW_ALLOW_FILE_STORE.name] = before
        self._experiment_id = experiment_id

    def create_experiment(self, name, artifact_location=None, tags=None):
        # FileStore.create_experiment's checks, then the workspace's id instead of a random one
        self._check_root_dir()
        _validate_experiment_name(name)
        if artifact_location:
            _validate_experiment_artifact_location_length(artifact_location)
        for tag in tags or ():
            _validate_experiment_tag(tag.key, tag.value)
        self._validate_experiment_does_not_exist(name)
        return self._create_experiment_with_id(name, str(self._experiment_id(name)), artifact_location, tags)
