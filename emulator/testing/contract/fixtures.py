"""The contract suite's fixtures: one ``ml_client`` per backend, the same tests on each.

By default every test runs twice:

- ``local``: ``connect("local")``, the emulator in this process, on a fresh workspace per test;
- ``azure-front-door``: ``connect("azure")``, the unmodified Azure backend (the real ``MLClient`` with
  ``DefaultAzureCredential``) against a real ``amlemu serve`` this session starts, configured only through
  the variables ``amlemu env`` prints and a workspace ``config.json``, as a user would; a fresh workspace
  name per test.

The backend is chosen with amlemu's pytest options (registered by its plugin in every pytest run, so they
work with ``pytest --pyargs`` too): ``--aml-backend local`` (the emulator only), ``front-door`` (the front door
only), ``azure`` (the workspace of ``--aml-workspace-config``, else the ``config.json`` found from the
current folder up; credentials required) or another registered backend's name. ``AMLEMU_BACKEND`` is the
fallback, as for the ``aml_*`` fixtures. ``amlemu contract --backend ...`` passes them.

Every name a test creates goes through ``unique_name``: the run's prefix keeps runs apart on a shared
Azure workspace, and the same names are used on every backend.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emulator.testing import leaks
from emulator.testing.contract import IRIS
from emulator.testing.frontdoor import FrontDoorProcess
from emulator.testing.names import RunNames

__all__ = [  # what a conftest takes with `import *`: the hook and the fixtures
    "cluster",
    "contract_azure_client",
    "contract_front_door",
    "contract_home",
    "contract_iris_model",
    "contract_run_names",
    "ml_client",
    "pytest_generate_tests",
    "unique_name",
]

#: the parameter id of the Azure backend against ``amlemu serve``
FRONT_DOOR = "azure-front-door"
#: the subscription and resource group the front door's workspaces are named in (any would do)
FRONT_DOOR_SCOPE = {"subscription_id": "00000000-1111-2222-3333-444444444444", "resource_group": "contract-rg"}


def chosen_backends(config: pytest.Config) -> list[str]:
    """The backends this run tests: ``--aml-backend``, then ``AMLEMU_BACKEND``; neither: local and the front door."""
    given = (config.getoption("aml_backend", None) or os.environ.get("AMLEMU_BACKEND") or "").lower()
    if not given:
        return ["local", FRONT_DOOR]
    return [FRONT_DOOR] if given in ("front-door", FRONT_DOOR) else [given]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "contract_backend" in metafunc.fixturenames:
        metafunc.parametrize("contract_backend", chosen_backends(metafunc.config))


@pytest.fixture(scope="session")
def contract_run_names() -> RunNames:
    """This pytest process's name prefix (one per xdist worker)."""
    return RunNames()


@pytest.fixture
def unique_name(contract_run_names: RunNames) -> Callable[[str, str], str]:
    """``unique_name(kind, name)``: ``name`` with the run's prefix, within Azure ML's length rule for ``kind``
    (``model``, ``online_endpoint``, ``compute``, ... ; any other kind: 32 characters)."""
    return contract_run_names.prefixed


@pytest.fixture
def cluster(ml_client, unique_name: Callable[[str, str], str]):
    """A compute cluster of up to two nodes (none until a job asks), deleted afterwards; its name."""
    from azure.ai.ml.entities import AmlCompute

    name = unique_name("compute", "cluster")
    ml_client.compute.begin_create_or_update(AmlCompute(name=name, min_instances=0, max_instances=2)).result()
    yield name
    ml_client.compute.begin_delete(name).result()


@pytest.fixture(scope="session")
def contract_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The local backend's state folder for this session (each test gets a workspace of its own in it)."""
    return tmp_path_factory.mktemp("amlemu-home")


@pytest.fixture(scope="session")
def contract_front_door(tmp_path_factory: pytest.TempPathFactory):
    """The session's ``amlemu serve``; stopped with SIGTERM at the end, and its exit code checked."""
    folder = tmp_path_factory.mktemp("front-door")
    server = FrontDoorProcess(folder / "home", folder / "serve.log")
    yield server
    for workspace in (server.home / "workspaces").glob("*"):
        leaks.stop_workspace(server.home, workspace.name)
    code = server.stop()
    assert code == 0, f"amlemu serve did not stop cleanly on SIGTERM (exit {code}):\n{server.log()[-3000:]}"


@pytest.fixture(scope="session")
def contract_iris_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the iris ONNX model (``model.onnx``, ``model.json``), trained once per session."""
    folder = tmp_path_factory.mktemp("iris-model")
    env = {**os.environ, "MLFLOW_TRACKING_URI": (folder / "mlruns").as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true"}
    command = [sys.executable, str(IRIS / "src" / "train.py"), "--C", "0.5", "--data", str(IRIS / "data" / "iris.csv")]
    subprocess.run(command, cwd=folder, env=env, check=True, capture_output=True)
    return folder / "outputs"


@pytest.fixture(scope="session")
def contract_azure_client(pytestconfig: pytest.Config) -> Any:
    """One ``MLClient`` for the session on a real workspace (its credential caches the token)."""
    from backends import connect

    return connect("azure", path=pytestconfig.getoption("aml_workspace_config", None))


@pytest.fixture
def ml_client(request: pytest.FixtureRequest, contract_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An ``MLClient``-shaped client of ``contract_backend``; locally and through the front door, on a fresh
    workspace whose processes (endpoint hosts, jobs) are stopped after the test."""
    from backends import connect

    for name in ("AMLEMU_BACKEND", "AMLEMU_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)
    if contract_backend == "local":
        home = request.getfixturevalue("contract_home")
        workspace = RunNames.workspace_for(request.node.name)
        monkeypatch.setenv("AMLEMU_HOME", str(home))
        yield connect("local", workspace=workspace)
        leaks.stop_workspace(home, workspace)
    elif contract_backend == FRONT_DOOR:
        server = request.getfixturevalue("contract_front_door")
        for key, value in server.variables.items():  # eval "$(amlemu env)"
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("AMLEMU_HOME", raising=False)  # the SDK must not find the store by itself
        workspace = f"contract-{uuid.uuid4().hex[:8]}"
        config = tmp_path / "config.json"
        config.write_text(json.dumps({**FRONT_DOOR_SCOPE, "workspace_name": workspace}))
        yield connect("azure", path=str(config))
        leaks.stop_workspace(server.home, workspace)
    elif contract_backend == "azure":
        yield request.getfixturevalue("contract_azure_client")
    else:
        yield connect(contract_backend)
