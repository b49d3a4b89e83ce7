"""Shared fixtures: every test gets its own amlemu home (state directory)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.testing.frontdoor import FrontDoorProcess, wait_for  # noqa: F401 (tests import wait_for from here)
from emulator.testing.frontdoor import free_base_port as _free_base_port  # noqa: F401 (tests/docs imports it)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"


def processes_mentioning(text: str) -> list[int]:
    """Live (not zombie) processes other than this one whose command line contains ``text``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if text in cmdline and state != "Z":
                found.append(int(entry))
    return found


@pytest.fixture
def amlemu_home(tmp_path, monkeypatch) -> Path:
    """A fresh AMLEMU_HOME for this test, with the per-process store cache cleared."""
    from emulator.store import db

    home = tmp_path / "amlemu-home"
    monkeypatch.setenv("AMLEMU_HOME", str(home))
    monkeypatch.delenv("AMLEMU_WORKSPACE", raising=False)
    monkeypatch.delenv("AMLEMU_BACKEND", raising=False)
    db._stores.clear()
    yield home
    db._stores.clear()


@pytest.fixture
def store(amlemu_home):
    from emulator.store import open_store

    return open_store()


class Cli:
    """Runs ``amlemu`` as a user would: a separate process, JSON on stdout."""

    def __init__(self, home: Path, cwd: Path):
        self.home, self.cwd = home, cwd

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        env = {**os.environ, "AMLEMU_HOME": str(self.home)}
        proc = subprocess.run(
            [sys.executable, "-m", "emulator.cli.main", *args],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"amlemu {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def json(self, *args: str):
        """The JSON document a command prints (after any streamed log lines)."""
        out = self.run(*args).stdout
        if not out.startswith(("{", "[")):
            out = out[out.rindex("\n{\n") + 1 :]
        return json.loads(out)


@pytest.fixture
def cli(amlemu_home, tmp_path) -> Cli:
    yield Cli(amlemu_home, tmp_path)
    stop_endpoint_hosts(amlemu_home)


@pytest.fixture(scope="session")
def iris_model(tmp_path_factory) -> Path:
    """A folder holding the iris ONNX model (model.onnx, model.json), trained once per session."""
    folder = tmp_path_factory.mktemp("iris-model")
    env = {**os.environ, "MLFLOW_TRACKING_URI": (folder / "mlruns").as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true"}
    subprocess.run(
        [
            sys.executable,
            str(SAMPLES / "iris" / "src" / "train.py"),
            "--C",
            "0.5",
            "--data",
            str(SAMPLES / "iris" / "data" / "iris.csv"),
        ],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
    )
    return folder / "outputs"


def stop_endpoint_hosts(home: Path) -> None:
    """End every endpoint host (and so its replicas) started under ``home``."""
    from emulator.endpoints import service
    from emulator.store import WorkspaceStore

    for ws in (home / "workspaces").glob("*") if (home / "workspaces").is_dir() else []:
        store = WorkspaceStore(ws, ws.name)
        for record in service.records.list_endpoints(store):
            service.stop_host(store, record["name"])


@contextlib.contextmanager
def local_home(home: Path) -> Iterator[Path]:
    """``home`` as AMLEMU_HOME (no workspace or backend taken from the environment), with the per-process store
    cache cleared; on leaving, the endpoint hosts started under it are stopped and the cache cleared again. For
    workspaces a module's tests share (the function-scoped ``amlemu_home`` fixture is the per-test one)."""
    from emulator.store import db

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AMLEMU_HOME", str(home))
        mp.delenv("AMLEMU_WORKSPACE", raising=False)
        mp.delenv("AMLEMU_BACKEND", raising=False)
        db._stores.clear()
        try:
            yield home
        finally:
            stop_endpoint_hosts(home)
            db._stores.clear()


@pytest.fixture
def ml_client(amlemu_home):
    """The local backend in a fresh home; endpoint hosts it started are stopped afterwards."""
    import backends

    client = backends.connect("local")
    yield client
    stop_endpoint_hosts(amlemu_home)


@pytest.fixture(autouse=True)
def _reset_mlflow_globals():
    """Tests that call ``mlflow.set_tracking_uri`` must not leak it into later tests."""
    yield
    if "mlflow" in sys.modules:
        import mlflow
        from mlflow.tracking._tracking_service import utils

        while mlflow.active_run():
            mlflow.end_run()
        utils._tracking_uri = None


# --- the REST front door: one `amlemu serve` per session (per xdist worker) -----------------------------


@pytest.fixture(scope="session")
def front_door(tmp_path_factory):
    """The session's ``amlemu serve``; stopped with SIGTERM at the end (and its exit code checked)."""
    folder = tmp_path_factory.mktemp("front-door")
    server = FrontDoorProcess(folder / "home", folder / "serve.log")
    yield server
    stop_endpoint_hosts(server.home)
    code = server.stop()
    assert code == 0, f"amlemu serve did not stop cleanly on SIGTERM (exit {code}):\n{server.log()[-3000:]}"


@pytest.fixture
def front_env(front_door, monkeypatch):
    """This test's process configured as ``eval "$(amlemu env)"`` would (and nothing else)."""
    for key, value in front_door.variables.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AMLEMU_HOME", raising=False)  # the SDK must not find the store by itself
    return front_door.variables


# --- parallel runs (pytest-xdist, `./run test` uses `-n 2 --dist loadgroup`) -------------------------------------


def _docker_test_files() -> set[str]:
    """The test files with Docker tests (by their marker, read from the source: the controller collects nothing)."""
    return {
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").rglob("test_*.py")
        if "mark.docker" in path.read_text(errors="replace")
    }


def pytest_xdist_make_scheduler(config, log):
    """Each test file is one unit of work (its module fixtures and servers are built once, on one worker), each page
    of the guide its own, and every file with Docker tests one unit together, so two image builds or container
    fleets never compete for the engine. (xdist's own ``loadgroup`` reads ``xdist_group`` markers by rewriting node
    ids, which pytest 9 no longer lets a plugin do: the scheduler groups instead.)"""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    docker_files = _docker_test_files()

    class FilesAndDocker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            if path in docker_files:
                return "docker"
            return nodeid if path == "tests/docs/test_guide.py" else path

    return FilesAndDocker(config, log)
