"""``amlemu serve`` as a test fixture: a real front door in a subprocess, and the variables that point the SDK at it.

Used by the contract suite (:mod:`emulator.testing.contract`), which runs the unmodified Azure backend
(``MLClient`` with ``DefaultAzureCredential``) against it, and by amlemu's own tests. The server is started
exactly as a user starts it (``amlemu serve --port N``) and the SDK is configured only by what
``amlemu env`` prints, so a test through it proves what a user's unmodified code would see.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

#: how long ``amlemu serve`` may take to say it listens (a hang guard for a loaded machine, not a timing check)
START_TIMEOUT_S = 60.0


def wait_for(predicate: Callable[[], T], what: str, timeout: float = 60.0, poll: float = 0.05) -> T:
    """Poll ``predicate()`` until it returns something truthy, and return it (a hang guard naming
    ``what`` after ``timeout`` seconds, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"still waiting for {what} after {timeout} s")


def free_base_port() -> int:
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
    """``amlemu serve`` in a subprocess: its home, port, log and the variables of ``amlemu env``.

    Args:
        home: the server's ``AMLEMU_HOME`` (its workspaces are folders under it).
        log: where the server's output goes (read by :meth:`log`, shown when it fails to start).
    """

    def __init__(self, home: Path, log: Path):
        self.home, self.log_path = Path(home), Path(log)
        self.port = free_base_port()
        env = {**os.environ, "AMLEMU_HOME": str(self.home)}
        for k in ("AMLEMU_BACKEND", "AMLEMU_WORKSPACE"):
            env.pop(k, None)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli.main", "serve", "--port", str(self.port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(
                lambda: self.proc.poll() is not None or "Ctrl-C" in self.log(), "amlemu serve to start", START_TIMEOUT_S
            )
        except AssertionError:
            self.stop()
            raise
        if self.proc.poll() is not None:
            self._log.close()
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
        """SIGTERM, as a user's Ctrl-C or a CI runner's cancel; the exit code (0 when it stopped cleanly)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode
