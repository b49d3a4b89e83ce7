"""The process runtime: the command runs as a local process group."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from emulator.runtime.base import Prepared, RunHandle, RunRequest, Runtime
from emulator.runtime.proctree import kill_tree
from emulator.runtime.venv import ensure_venv


class ProcessHandle(RunHandle):
    def __init__(self, popen: subprocess.Popen):
        self._popen = popen
        self.pid = popen.pid

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        kill_tree(self.pid)
        self._popen.wait()


def _die_with_parent() -> None:
    """In the child: SIGTERM when the parent dies (Linux PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


class ProcessRuntime(Runtime):
    name = "process"
    shares_host = True

    def prepare(
        self, resolved: Mapping[str, Any], log: Callable[[str], None], extra_requirements: Sequence[str] = ()
    ) -> Prepared:
        """amlemu's own interpreter for an environment it already satisfies (no requirements: curated
        environments map to it, and it has the scoring server's packages), else a cached virtualenv with
        the environment's requirements and ``extra_requirements`` resolved together, on the Python the
        environment asks for when this machine has it (see :mod:`emulator.runtime.venv`)."""
        requirements = resolved.get("requirements")
        if not requirements:
            return Prepared("process", bin_dir=Path(sys.executable).parent)
        build = ensure_venv(requirements, log, extra=extra_requirements, python=resolved.get("python"))
        return Prepared("process", bin_dir=build.bin_dir, cached=build.cached, substitutions=build.substitutions)

    def start(self, request: RunRequest) -> ProcessHandle:
        env = dict(request.env)
        if request.bin_dir:
            env["PATH"] = f"{request.bin_dir}{os.pathsep}{env.get('PATH', os.defpath)}"
            env["VIRTUAL_ENV"] = str(request.bin_dir.parent)
        request.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(request.log_path, "ab", buffering=0) as log:
            popen = subprocess.Popen(
                ["/bin/bash", "-c", request.command],
                cwd=request.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                preexec_fn=_die_with_parent if request.die_with_parent else None,
            )
        return ProcessHandle(popen)
