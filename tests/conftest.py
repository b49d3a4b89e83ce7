"""Shared fixtures: every test gets its own amlemu home (state directory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"


def pytest_addoption(parser):
    parser.addoption("--backend", default="local", help="backend the contract suite runs against")


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
        proc = subprocess.run([sys.executable, "-m", "emulator.cli.main", *args], cwd=self.cwd, env=env,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"amlemu {' '.join(args)} exited {proc.returncode}\n"
                                 f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def json(self, *args: str):
        """The JSON document a command prints (after any streamed log lines)."""
        out = self.run(*args).stdout
        if not out.startswith(("{", "[")):
            out = out[out.rindex("\n{\n") + 1:]
        return json.loads(out)


@pytest.fixture
def cli(amlemu_home, tmp_path) -> Cli:
    return Cli(amlemu_home, tmp_path)


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
