"""Runtimes: where a job's processes and a deployment's replicas run (a local process or a container)."""

from __future__ import annotations

from collections.abc import Callable

from emulator.runtime.base import RUNTIMES, Prepared, RunHandle, RunRequest, Runtime, check_runtime

__all__ = ["Prepared", "Runtime", "RunHandle", "RunRequest", "check_runtime", "select"]


def select(name: str | None, log: Callable[[str], None] | None = None) -> Runtime:
    """The runtime named ``name`` (``process`` when None); ``auto`` is resolved here, once: docker when an
    engine answers, else process (said on ``log``)."""
    name = name or "process"
    if name not in RUNTIMES:
        check_runtime(name)  # raises, naming the known runtimes
    if name == "auto":
        from emulator.runtime.engine import engine_answers  # only runtime auto needs the engine probe

        name = "docker" if engine_answers() else "process"
        if name == "process" and log:
            log("[amlemu] runtime auto: no Docker engine answers; running on the process runtime")
    if name == "docker":
        from emulator.runtime.docker import DockerRuntime  # the Docker SDK only when a container is wanted

        return DockerRuntime()
    # only process runs need the process runtime (subprocess, ctypes)
    from emulator.runtime.process import ProcessRuntime

    return ProcessRuntime()
