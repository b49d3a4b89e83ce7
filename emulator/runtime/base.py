"""One runtime interface for jobs (and deployments): process now, docker next."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from emulator.errors import ValidationError


@dataclass
class RunRequest:
    """What to run: a shell command in a folder, with an environment, logging to a file.

    ``bin_dir`` is the environment's interpreter folder, put first on PATH.
    ``labels`` identify the run (workspace, job, kind) for cleanup.
    ``ports`` are the ports a server in the run listens on (the docker runtime
    publishes them on 127.0.0.1); ``network`` is the docker network to join
    (None: no network for jobs); ``die_with_parent`` ends a process-runtime run
    when the process that started it dies (replicas die with their endpoint host).

    ``cpu_limit`` (cores), ``memory_limit`` (bytes) and ``gpus`` are what one node of the
    compute's VM size has. The docker runtime sets them on the container when it creates
    it, and fails the run if the engine cannot honour them. The process runtime ignores them:
    a process shares this machine's cores, memory and GPUs.
    """

    command: str
    cwd: Path
    env: dict[str, str]
    log_path: Path
    bin_dir: Path | None = None
    labels: dict[str, str] = field(default_factory=dict)
    ports: list[int] = field(default_factory=list)
    network: str | None = None
    die_with_parent: bool = False
    cpu_limit: float | None = None
    memory_limit: int | None = None
    gpus: int = 0


class RunHandle(ABC):
    """A started run. ``warnings`` say what of the request the runtime could only approximate."""

    pid: int
    warnings: tuple[str, ...] = ()

    @abstractmethod
    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code (negative: killed by that signal), or None if still running at timeout."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the run and everything it started."""


class Runtime(ABC):
    """Starts runs. Every runtime honours the same :class:`RunRequest` contract."""

    name: str

    @abstractmethod
    def start(self, request: RunRequest) -> RunHandle:
        """Start ``request.command`` and return at once."""


def get_runtime(name: str) -> Runtime:
    """The process runtime (``docker`` needs an image: see :func:`emulator.runtime.docker.DockerRuntime`)."""
    if name == "process":
        from emulator.runtime.process import ProcessRuntime

        return ProcessRuntime()
    raise ValidationError(f"Unknown runtime '{name}'. Use 'process', 'docker' or 'auto'.")


RUNTIMES = ("process", "docker", "auto")


def check_runtime(name: str) -> str:
    """Validate a runtime name at submit time; an explicit ``docker`` needs an engine now."""
    if name not in RUNTIMES:
        raise ValidationError(f"Unknown runtime '{name}' (AMLEMU_RUNTIME). Use one of: {', '.join(RUNTIMES)}.")
    if name == "docker":
        from emulator.runtime.engine import docker_client

        docker_client()
    return name
