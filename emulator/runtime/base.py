"""One runtime interface for jobs, deployment replicas and environment builds: a local process or a container.

:func:`emulator.runtime.select` resolves a runtime name (``process``, ``docker``, ``auto``) once and
returns a :class:`Runtime`: ``prepare`` builds what an environment needs there (a cached
virtualenv, or an image), ``start`` runs a :class:`RunRequest`. Callers ask a runtime what it
can do (``shares_host``), never which one it is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    #: the prepared environment (see :meth:`Runtime.prepare`): a container's image
    image: str | None = None
    #: folders a container sees at their host paths (read-write, read-only) or elsewhere (host: container,
    #: read-only); a local process sees the host's files anyway
    mounts: list[Path] = field(default_factory=list)
    readonly: list[Path] = field(default_factory=list)
    remapped: dict[Path, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class Prepared:
    """An environment made ready on a runtime: the interpreter folder a process puts first on PATH, or the
    image a container runs; whether it was there already, and which FROM images the local base replaced."""

    runtime: str
    bin_dir: Path | None = None
    image: str | None = None
    cached: bool = True
    stands_in_for: tuple[str, ...] = ()
    #: what the build put in place of what the environment asks for ("python 3.9 → 3.11", a pin)
    substitutions: tuple[str, ...] = ()

    def summary(self) -> dict:
        """What ``amlemu environment build`` prints."""
        out: dict = {"runtime": self.runtime, "cached": self.cached}
        if self.image:
            out["image"] = self.image
        else:
            out["venv"] = str(self.bin_dir.parent) if self.bin_dir else None
        if self.stands_in_for:
            out["base_stands_in_for"] = list(self.stands_in_for)
        if self.substitutions:
            out["substitutions"] = list(self.substitutions)
        return out


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
    """Prepares environments and starts runs. Every runtime honours the same :class:`RunRequest` contract."""

    name: str
    #: the run sees this machine: its files, PATH, tools and the caller's environment (a local process); a
    #: container sees only its image, its mounts and the variables its request names
    shares_host: bool
    #: ``start`` and ``wait`` talk to an engine and may block: an event loop calls them in a thread
    blocking: bool = False

    @abstractmethod
    def prepare(
        self, resolved: Mapping[str, Any], log: Callable[[str], None], extra_requirements: Sequence[str] = ()
    ) -> Prepared:
        """Build (or find cached) what a resolved environment needs on this runtime, with
        ``extra_requirements`` added (a replica's server packages); progress goes to ``log``."""

    @abstractmethod
    def start(self, request: RunRequest) -> RunHandle:
        """Start ``request.command`` and return at once."""


RUNTIMES = ("process", "docker", "auto")


def check_runtime(name: str) -> str:
    """Validate a runtime name at submit time; an explicit ``docker`` needs an engine now."""
    if name not in RUNTIMES:
        raise ValidationError(f"Unknown runtime '{name}' (AMLEMU_RUNTIME). Use one of: {', '.join(RUNTIMES)}.")
    if name == "docker":
        from emulator.runtime.engine import docker_client  # only docker needs the engine probe

        docker_client()
    return name
