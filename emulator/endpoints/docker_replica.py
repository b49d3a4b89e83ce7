"""A deployment replica as a container: the environment's image plus the scoring server's packages, or the
image's own azureml-inference-server-http (see :mod:`emulator.endpoints.launch`).

The model version folder is mounted read-only at
``/var/azureml-app/azureml-models/<name>/<version>`` (as Azure lays it out), the
code snapshot and the scoring server read-only at their host paths, the log
folder read-write. The container runs as the invoking user (see
:mod:`emulator.runtime.docker`), with only the replica's own environment.
Every replica joins its endpoint's own internal Docker network and publishes
nothing: it has no route out, containers on other networks cannot reach it,
and the gateway (on the host) reaches it at its address on that network. So a
call reaches a replica only through the gateway, which checks the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import docker  # this module is loaded only for container replicas, which need the Docker SDK

from emulator.endpoints.launch import CONTAINER_APP, serving_path
from emulator.runtime.base import Prepared, RunRequest
from emulator.runtime.engine import LABEL, docker_client
from emulator.runtime.proctree import is_alive, start_time

SERVING_MOUNT = Path("/opt/amlemu/serving")
#: the endpoint host that starts the containers (``pid:start``): leftovers are those of a host that is gone
_HOST = f"{os.getpid()}:{start_time(os.getpid())}"


def private_network(workspace: str, endpoint: str) -> str:
    """The endpoint's own internal bridge network: no route out (created once, labelled for cleanup)."""
    name = f"amlemu-{workspace}-{endpoint}"
    client = docker_client()
    for network in client.networks.list(names=[name]):
        if network.name == name and not network.attrs.get("Internal"):  # made by an older amlemu: had a route out
            network.remove()  # refused while a replica is attached: that replica's start fails and is retried
    if not [n for n in client.networks.list(names=[name]) if n.name == name]:
        try:
            client.networks.create(
                name,
                driver="bridge",
                internal=True,
                check_duplicate=True,
                labels={
                    f"{LABEL}.kind": "endpoint-network",
                    f"{LABEL}.workspace": workspace,
                    f"{LABEL}.endpoint": endpoint,
                },
            )
        except docker.errors.APIError as exc:  # another replica created it first
            if exc.status_code != 409:
                raise
    return name


def start_container(launcher, prepared: Prepared, name: str, port: int, log_path: Path) -> tuple[Any, str, Path]:
    """Start replica ``name`` in a container; returns its handle, the address to reach it, its log."""
    network = private_network(launcher.store.name, launcher.deployment["endpoint_name"])  # the gateway is the way in
    handle = launcher.runtime.start(replica_request(launcher, prepared, name, port, log_path, network))
    return _ReplicaHandle(handle, network), handle.address(network), log_path


def replica_request(
    launcher, prepared: Prepared, name: str, port: int, log_path: Path, network: str | None
) -> RunRequest:
    """What replica ``name``'s container runs: its image, mounts, environment, server command (listening on all
    addresses of ``network`` at ``port``) and labels. Also what :class:`amlemu.testing.ScoringContainer` runs."""
    dep = launcher.deployment
    store = launcher.store
    remapped = {serving_path(): SERVING_MOUNT}
    model, model_dir = dep.get("model"), None
    if model:
        model_dir = CONTAINER_APP / "azureml-models" / model["name"] / model["version"]
        remapped[store.asset_dir("model", model["name"], model["version"])] = model_dir
    code = dep.get("code")
    env = launcher.replica_env(str(model_dir) if model_dir else None, code, str(SERVING_MOUNT))
    # amlemu's server or the image's azmlinfsrv; on all addresses: only the endpoint's internal network reaches it
    command, server_env = launcher.server_command("0.0.0.0", port)
    env.update(server_env)
    return RunRequest(
        command=command,
        cwd=Path(code) if code else Path("/home/aml"),
        env=env,
        log_path=log_path,
        labels={
            "workspace": store.name,
            "endpoint": dep["endpoint_name"],
            "deployment": dep["deployment_name"],
            "replica": name,
            "kind": "deployment",
            "host": _HOST,
        },
        network=network,
        image=prepared.image,
        mounts=[launcher.log_dir],
        readonly=[Path(code)] if code else [],
        remapped=remapped,
    )


class _ReplicaHandle:
    """A container replica: ``stop`` also removes the container (and its endpoint's network after the last one)."""

    def __init__(self, handle, private_network: str | None = None):
        self._handle = handle
        self._network = private_network
        self.pid = handle.pid

    def wait(self, timeout=None):
        return self._handle.wait(timeout)

    def stop(self):
        self._handle.stop()
        self._handle._remove()
        if self._network:
            _remove_network_if_unused(self._network)


def _remove_network_if_unused(name: str) -> None:
    for network in docker_client().networks.list(names=[name]):
        try:
            network.reload()
            if not network.containers:
                network.remove()  # the engine refuses while a container is attached: a racing start is safe
        except Exception:
            pass


def remove_leftovers(workspace: str, endpoint: str) -> int:
    """Remove containers a previous host of this endpoint left behind (after a crash)."""
    client = docker_client()
    labels = [f"{LABEL}.workspace={workspace}", f"{LABEL}.endpoint={endpoint}"]
    found = client.containers.list(all=True, ignore_removed=True, filters={"label": labels})
    # the same workspace and endpoint names under another AMLEMU_HOME: its live host owns those containers
    found = [c for c in found if not _host_alive(c.labels.get(f"{LABEL}.host", ""))]
    for container in found:
        try:
            container.remove(force=True)
        except Exception:
            pass
    return len(found)


def _host_alive(label: str) -> bool:
    pid, _, started = label.partition(":")
    return pid.isdigit() and int(pid) != os.getpid() and is_alive(int(pid), started)
