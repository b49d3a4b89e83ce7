"""The Docker engine, reached through the Docker SDK on first use (never the docker CLI)."""

from __future__ import annotations

import os

from emulator import config
from emulator.errors import EmulatorError

_client = None
LABEL = "com.amlemu"
#: the AMLEMU_HOME a container belongs to: prune and leftover sweeps touch only their own home's containers
HOME_LABEL = f"{LABEL}.home"

NO_ENGINE = (
    "No Docker engine answers ({detail}). Start one (as root: `dockerd > /tmp/dockerd.log 2>&1 &`, "
    "or `.ci/run`, which installs and starts it), or run on the process runtime: "
    "AMLEMU_RUNTIME=process."
)


class DockerUnavailable(EmulatorError):
    code = "DockerUnavailable"
    status = 503


def docker_client():
    """A connected ``docker.DockerClient``; DockerUnavailable when no engine answers."""
    global _client
    if _client is None:
        import docker  # on first use: the Docker SDK costs ~0.1 s at start

        try:
            client = docker.from_env(timeout=600)
            client.ping()
        except Exception as exc:
            raise DockerUnavailable(NO_ENGINE.format(detail=type(exc).__name__)) from None
        _client = client
    return _client


def _forget_client() -> None:
    global _client
    _client = None


# a forked process (a parent job forks its children's supervisors) must not share the parent's
# connection to the engine: two processes on one socket interleave their requests
os.register_at_fork(after_in_child=_forget_client)


def engine_answers() -> bool:
    try:
        docker_client()
        return True
    except DockerUnavailable:
        return False


def home_label() -> str:
    """The value of :data:`HOME_LABEL` for this process's ``AMLEMU_HOME``."""
    return str(config.home().resolve())
