"""The docker runtime: the command runs in a container built from the job's environment.

The job folder, the tracking store and the inputs are mounted at the same paths
as on the host, so commands, ``MLFLOW_TRACKING_URI`` and input paths read the
same inside and out. The container runs as the image's non-root user ``aml``,
publishes only the ports a request names (on 127.0.0.1), is labelled (workspace,
job, kind) and removed when it ends.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from emulator.runtime.base import RunHandle, RunRequest, Runtime
from emulator.runtime.engine import LABEL, docker_client

CONTAINER_USER = "1000:1000"
_HOST_ONLY = ("PATH", "VIRTUAL_ENV", "HOME", "PWD", "OLDPWD", "SHLVL", "_", "LANG", "PYTHONPATH")


def _open_up(path: Path) -> None:
    """Let the container's non-root user write where the job writes (host files belong to the caller)."""
    for root, dirs, files in os.walk(path):
        os.chmod(root, 0o777)
        for name in files:
            try:
                os.chmod(os.path.join(root, name), 0o666)
            except OSError:
                pass


class DockerHandle(RunHandle):
    def __init__(self, container):
        self.container = container
        container.reload()
        self.pid = container.attrs["State"]["Pid"]

    def wait(self, timeout: float | None = None) -> int | None:
        import requests

        if timeout is not None and timeout <= 0:  # a poll: is it still running?
            try:
                self.container.reload()
            except Exception:
                return -9  # removed from outside
            state = self.container.attrs["State"]
            if state.get("Running"):
                return None
            code = state.get("ExitCode", 1)
            self._remove()
            return code

        while True:
            try:
                result = self.container.wait(timeout=timeout if timeout is not None else 300)
                break
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                if timeout is not None:
                    return None
        code = result.get("StatusCode", 1)
        self._remove()
        return code

    def stop(self) -> None:
        try:
            self.container.stop(timeout=3)
        except Exception:
            pass

    def address(self, network: str) -> str:
        """The container's IP address on ``network`` (how the host reaches an unpublished port)."""
        self.container.reload()
        return self.container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]

    def _remove(self) -> None:
        try:
            self.container.remove(force=True)
        except Exception:
            pass


class DockerRuntime(Runtime):
    name = "docker"

    def __init__(self, image: str, mounts: list[Path], writable: list[Path], readonly: list[Path] = (),
                 remapped: dict[Path, Path] | None = None):
        """``mounts`` are bound read-write, ``writable`` (inside them) opened to the container's user,
        ``readonly`` bound read-only at the same paths, ``remapped`` read-only at other paths (host: container)."""
        self.image = image
        self.mounts = list(mounts)
        self.writable = list(writable)
        self.readonly = list(readonly)
        self.remapped = dict(remapped or {})

    def start(self, request: RunRequest) -> DockerHandle:
        client = docker_client()
        for path in self.writable:
            _open_up(path)
        volumes = {str(p): {"bind": str(p), "mode": "ro"} for p in self.readonly}
        volumes.update({str(src): {"bind": str(dst), "mode": "ro"} for src, dst in self.remapped.items()})
        volumes.update({str(p): {"bind": str(p), "mode": "rw"} for p in self.mounts})
        # the host's own PATH, HOME, PYTHONPATH ... mean nothing in the image; values a request sets on purpose stay
        env = {k: v for k, v in request.env.items() if k not in _HOST_ONLY or v != os.environ.get(k)}
        log = shlex.quote(str(request.log_path))
        command = f"exec >> {log} 2>&1; {request.command}"
        network = {"network": request.network} if request.network else {"network_mode": "none"}
        container = client.containers.run(
            self.image, ["/bin/bash", "-c", command], detach=True, working_dir=str(request.cwd),
            environment=env, volumes=volumes, user=CONTAINER_USER, **network,
            ports={f"{p}/tcp": ("127.0.0.1", p) for p in request.ports},  # published on loopback only
            labels={f"{LABEL}.{k}": v for k, v in {"kind": "job", **request.labels}.items()})
        return DockerHandle(container)
