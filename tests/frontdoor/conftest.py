"""A real ``amlemu serve`` (a separate process, as a user runs it) and the real ``MLClient`` pointed at it.

One front door per test session (per xdist worker), in its own ``AMLEMU_HOME``; each test
gets its own workspace name, so tests share nothing but the server. The SDK is configured
only through the variables ``amlemu env`` prints.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import wait_for


def _free_base_port() -> int:
    """A base port with the two after it free too (the front door listens on three)."""
    for _ in range(200):
        base = random.randint(20000, 60000)
        sockets = []
        try:
            for port in range(base, base + 3):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no three consecutive free ports on 127.0.0.1")


class FrontDoorProcess:
    """``amlemu serve`` in a subprocess: its home, port, log and the variables of ``amlemu env``."""

    def __init__(self, home: Path, log: Path):
        self.home, self.log_path = home, log
        self.port = _free_base_port()
        env = {**os.environ, "AMLEMU_HOME": str(home)}
        for k in ("AMLEMU_BACKEND", "AMLEMU_WORKSPACE"):
            env.pop(k, None)
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli.main", "serve", "--port", str(self.port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: self.proc.poll() is not None or "Ctrl-C" in self.log(), "amlemu serve to start", 60)
        except AssertionError:
            self.stop()
            raise
        if self.proc.poll() is not None:
            raise AssertionError(f"amlemu serve exited with {self.proc.returncode}:\n{self.log()}")
        out = subprocess.run(
            [sys.executable, "-m", "emulator.cli.main", "env", "--port", str(self.port), "--format", "dotenv"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        self.variables = dict(line.split("=", 1) for line in out.splitlines() if line)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def front_door(tmp_path_factory):
    """The session's ``amlemu serve``; stopped with SIGTERM at the end (and its exit code checked)."""
    folder = tmp_path_factory.mktemp("front-door")
    server = FrontDoorProcess(folder / "home", folder / "serve.log")
    yield server
    from tests.conftest import stop_endpoint_hosts

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


@pytest.fixture
def workspace_name() -> str:
    return f"ws-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def sdk(front_env, workspace_name):
    """The real ``MLClient(DefaultAzureCredential(), ...)``, as Azure's documentation builds it."""
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    return MLClient(DefaultAzureCredential(), "00000000-1111-2222-3333-444444444444", "my-rg", workspace_name)
