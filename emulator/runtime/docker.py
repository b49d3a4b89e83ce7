"""The docker runtime: the command runs in a container built from the job's environment.

The job folder, the tracking store and the inputs are mounted at the same paths
as on the host, so commands, ``MLFLOW_TRACKING_URI`` and input paths read the
same inside and out. The container runs as the invoking user's uid:gid, so what
it writes in the mounted folders belongs to that user and nothing is opened to
others. It gets only the environment its request names (never the caller's
shell), no capabilities, ``no-new-privileges``, a process limit
(``AMLEMU_CONTAINER_PIDS``) and a memory limit (a node's size, else
``AMLEMU_CONTAINER_MEMORY``; see :mod:`emulator.config`). It publishes only the
ports a request names (on 127.0.0.1), is labelled (workspace, job, kind) and
removed when it ends. A request's node limits (cores, memory, GPUs) are set when
the container is created; one the engine cannot honour fails the run before its
command starts, except swap accounting, which only warns.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import docker
import requests

from emulator import config
from emulator.errors import EmulatorError, ValidationError
from emulator.runtime.base import Prepared, RunHandle, RunRequest, Runtime
from emulator.runtime.engine import HOME_LABEL, LABEL, docker_client, home_label
from emulator.runtime.images import environment_image

CPU_PERIOD = 100_000  # microseconds: the CFS period a container's CPU quota is a share of
CONTAINER_MEMORY = "4g"  # AMLEMU_CONTAINER_MEMORY: a container no node size bounds
CONTAINER_PIDS = 4096  # AMLEMU_CONTAINER_PIDS: processes and threads in one container
CONTAINER_HOME = "/tmp"  # HOME when a request sets none: writable by any uid, gone with the container


def container_user() -> str:
    """``uid:gid`` of the invoking user: the container writes the mounted folders as their owner."""
    return f"{os.getuid()}:{os.getgid()}"


def _user_name() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return "aml"


def _bytes(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*([kmg]?)i?b?\s*", text.lower())
    if not match:
        raise ValidationError(f"AMLEMU_CONTAINER_MEMORY must be bytes or a size such as 512m or 4g; got '{text}'.")
    return int(match[1]) * 1024 ** " kmg".index(match[2] or " ")


def default_limits() -> dict:
    """The memory and process limits of a container when its request names no node size (settings)."""
    memory = _bytes(config.setting("container_memory", CONTAINER_MEMORY))
    pids = config.setting("container_pids", str(CONTAINER_PIDS))
    if not pids.strip().isdigit():
        raise ValidationError(f"AMLEMU_CONTAINER_PIDS must be a whole number (0: no limit); got '{pids}'.")
    return {"memory": memory, "pids": int(pids)}


def _remove(container) -> None:
    try:
        container.remove(force=True)
    except Exception:
        pass  # already gone


class EngineRefused(EmulatorError):
    """The Docker engine cannot give a container what its request asks (limits, GPUs)."""


_CGROUP_FIX = (
    "Use a Docker engine with the cgroup cpu and memory controllers (a cgroup v1 kernel needs "
    "cgroup_enable=memory swapaccount=1 on its command line; rootless Docker needs cgroup v2), or "
    "run the job on the process runtime (AMLEMU_RUNTIME=process), where a node's size is not enforced."
)
_GPU_FIX = (
    "Install the NVIDIA Container Toolkit and configure the engine for it (`sudo nvidia-ctk runtime "
    "configure --runtime=docker`, then restart Docker), or run the job on the process runtime "
    "(AMLEMU_RUNTIME=process), which sees this machine's GPUs."
)


def limit_options(cpu_limit: float | None = None, memory_limit: int | None = None, gpus: int = 0) -> dict:
    """A node's cores, memory (bytes) and GPUs as ``containers.run`` keyword arguments; none for none.

    CPU is a CFS quota (not ``nano_cpus``): an engine without CFS drops a quota with a warning,
    which :meth:`DockerRuntime.start` turns into a clear failure. Swap is capped at the memory,
    as on an Azure node, which has no swap.
    """
    options: dict = {}
    if cpu_limit:
        options.update(cpu_period=CPU_PERIOD, cpu_quota=int(cpu_limit * CPU_PERIOD))
    if memory_limit:
        options.update(mem_limit=int(memory_limit), memswap_limit=int(memory_limit))
    if gpus:
        options["device_requests"] = [docker.types.DeviceRequest(count=gpus, capabilities=[["gpu"]])]
    return options


def run_options(request: RunRequest) -> dict:
    """The ``containers.run`` keyword arguments a request decides (all but the image and the volumes)."""
    # the request's environment is all the container gets: its builder leaves the caller's shell out
    user = _user_name()
    env = {"HOME": CONTAINER_HOME, "USER": user, "LOGNAME": user, **request.env}
    log = shlex.quote(str(request.log_path))
    network = {"network": request.network} if request.network else {"network_mode": "none"}
    defaults = default_limits()
    limits = limit_options(request.cpu_limit, request.memory_limit or defaults["memory"] or None, request.gpus)
    if not request.memory_limit:
        limits.pop("memswap_limit", None)  # off-cluster: the host's swap policy, as for a process
    return dict(
        command=["/bin/bash", "-c", f"exec >> {log} 2>&1; {request.command}"],
        detach=True,
        working_dir=str(request.cwd),
        environment=env,
        user=container_user(),
        **network,
        ports={f"{p}/tcp": ("127.0.0.1", p) for p in request.ports},  # published on loopback only
        labels={HOME_LABEL: home_label(), **{f"{LABEL}.{k}": v for k, v in {"kind": "job", **request.labels}.items()}},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        **limits,
        **({"pids_limit": defaults["pids"]} if defaults["pids"] else {}),
    )


def volume_bindings(request: RunRequest) -> dict[str, dict[str, str]]:
    """The request's folders as ``containers.create`` volumes: read-only, remapped (read-only), read-write."""
    volumes = {str(p): {"bind": str(p), "mode": "ro"} for p in request.readonly}
    volumes.update({str(src): {"bind": str(dst), "mode": "ro"} for src, dst in request.remapped.items()})
    volumes.update({str(p): {"bind": str(p), "mode": "rw"} for p in request.mounts})
    return volumes


def check_limits(request: RunRequest, host_config: dict) -> list[str]:
    """Warnings for limits the engine relaxed at creation; EngineRefused for ones it dropped.

    An engine without a cgroup controller creates the container anyway, with that limit
    zeroed (swap: -1) and only a warning; ``host_config`` (the created container's) shows it.
    """
    dropped = []
    if request.cpu_limit and not host_config.get("CpuQuota"):
        dropped.append(f"cpu_quota ({request.cpu_limit:g} cores)")
    if request.memory_limit and not host_config.get("Memory"):
        dropped.append(f"mem_limit ({request.memory_limit / 2**30:.1f} GiB)")
    if dropped:
        raise EngineRefused(
            f"The Docker engine dropped the container's {' and '.join(dropped)}: it cannot "
            f"bound a container by a node's size. {_CGROUP_FIX}"
        )
    if request.memory_limit and host_config.get("MemorySwap") != request.memory_limit:
        return [
            "[amlemu] the Docker engine does not account swap (memswap_limit was dropped): the job's "
            "container may swap beyond the node's memory, which an Azure node cannot."
        ]
    return []


class DockerHandle(RunHandle):
    def __init__(self, container, warnings: tuple[str, ...] | list[str] = ()):
        self.container = container
        self.warnings = tuple(warnings)
        container.reload()
        self.pid = container.attrs["State"]["Pid"]

    def wait(self, timeout: float | None = None) -> int | None:
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
        _remove(self.container)


class DockerRuntime(Runtime):
    name = "docker"
    shares_host = False
    blocking = True

    def prepare(
        self, resolved: Mapping[str, Any], log: Callable[[str], None], extra_requirements: Sequence[str] = ()
    ) -> Prepared:
        """The environment's image, built offline if missing. A Dockerfile build context is taken as it is (a user
        image brings its own packages); requirements are resolved together with ``extra_requirements``, the
        user's pins winning (no requirements: amlemu's default environment)."""
        image = environment_image(resolved, log, extra_requirements)
        return Prepared(
            "docker",
            image=image.tag,
            cached=image.cached,
            stands_in_for=tuple(image.stands_in_for),
            substitutions=tuple(image.substitutions),
        )

    def start(self, request: RunRequest) -> DockerHandle:
        """Create the container from ``request.image`` with the request's mounts and limits, check the engine
        kept the limits, then start it. The container's user owns the mounts: nothing is opened to others."""
        client = docker_client()
        if not request.image:
            raise ValidationError("A container needs an image: prepare the environment first (Runtime.prepare).")
        # create, check, start (what containers.run does, less the pull): nothing runs without its limits
        container = client.containers.create(request.image, volumes=volume_bindings(request), **run_options(request))
        try:
            warnings = check_limits(request, container.attrs["HostConfig"])
            container.start()
        except docker.errors.APIError as exc:
            _remove(container)
            if not request.gpus:
                raise
            raise EngineRefused(
                f"The Docker engine could not give the container {request.gpus} GPU"
                f"{'s' if request.gpus != 1 else ''} (device_requests, as `docker run --gpus "
                f"{request.gpus}`): {exc.explanation or exc}. {_GPU_FIX}"
            ) from exc
        except BaseException:
            _remove(container)
            raise
        return DockerHandle(container, warnings)
