"""A deployment replica as a container: the environment's image plus the scoring server's packages.

The model version folder is mounted read-only at
``/var/azureml-app/azureml-models/<name>/<version>`` (as Azure lays it out), the
code snapshot and the scoring server read-only at their host paths, the log
folder read-write. The container runs as the non-root user ``aml``. A public
endpoint's replica publishes its port on 127.0.0.1; a private one
(``public_network_access: disabled``) joins the endpoint's own Docker network
and publishes nothing: the gateway reaches it at its address on that network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emulator.endpoints.launch import CONTAINER_APP, serving_path, serving_requirements
from emulator.runtime.base import RunRequest
from emulator.runtime.engine import LABEL, docker_client

SERVING_MOUNT = Path("/opt/amlemu/serving")


def private_network(workspace: str, endpoint: str) -> str:
    """The endpoint's own bridge network (created once, labelled for cleanup)."""
    name = f"amlemu-{workspace}-{endpoint}"
    client = docker_client()
    if not client.networks.list(names=[name]):
        client.networks.create(name, driver="bridge", internal=False,
                               labels={f"{LABEL}.kind": "endpoint-network", f"{LABEL}.workspace": workspace,
                                       f"{LABEL}.endpoint": endpoint})
    return name


def _image(launcher, log) -> str:
    from emulator.runtime.images import default_requirements, environment_image

    resolved = dict(launcher.deployment.get("environment_resolved") or {})
    if resolved.get("build"):
        return environment_image(resolved, log).tag  # a user image must bring its own server packages
    reqs = resolved.get("requirements") or default_requirements()
    resolved["requirements"] = sorted(set(reqs) | set(serving_requirements()))
    return environment_image(resolved, log).tag


def start_container(launcher, name: str, port: int, log_path: Path) -> tuple[Any, str, Path]:
    """Start replica ``name`` in a container; returns its handle, the address to reach it, its log."""
    from emulator.runtime.docker import DockerRuntime

    dep = launcher.deployment
    store = launcher.store
    if not getattr(launcher, "_image", None):
        launcher._image = _image(launcher, launcher._event)
    remapped = {serving_path(): SERVING_MOUNT}
    model, model_dir = dep.get("model"), None
    if model:
        model_dir = CONTAINER_APP / "azureml-models" / model["name"] / model["version"]
        remapped[store.asset_dir("model", model["name"], model["version"])] = model_dir
    code = dep.get("code")
    env = launcher._env(str(model_dir) if model_dir else None, code, str(SERVING_MOUNT))
    endpoint = store.get_asset("online-endpoint", dep["endpoint_name"], "1")
    private = endpoint.get("public_network_access") == "disabled"
    network = private_network(store.name, dep["endpoint_name"]) if private else "bridge"
    runtime = DockerRuntime(launcher._image, mounts=[launcher.log_dir], writable=[launcher.log_dir],
                            readonly=[Path(code)] if code else [], remapped=remapped)
    request = RunRequest(
        command=f"exec python -m emulator.serving --host 0.0.0.0 --port {port}",
        cwd=Path(code) if code else Path("/home/aml"), env=env, log_path=log_path,
        labels={"workspace": store.name, "endpoint": dep["endpoint_name"], "deployment": dep["deployment_name"],
                "replica": name, "kind": "deployment"},
        ports=[] if private else [port], network=network)
    handle = runtime.start(request)
    address = handle.address(network) if private else "127.0.0.1"
    return _ReplicaHandle(handle), address, log_path


class _ReplicaHandle:
    """A container replica: ``stop`` also removes the container."""

    def __init__(self, handle):
        self._handle = handle
        self.pid = handle.pid

    def wait(self, timeout=None):
        return self._handle.wait(timeout)

    def stop(self):
        self._handle.stop()
        self._handle._remove()


def remove_leftovers(workspace: str, endpoint: str) -> int:
    """Remove containers a previous host of this endpoint left behind (after a crash)."""
    client = docker_client()
    found = client.containers.list(all=True, filters={"label": [f"{LABEL}.workspace={workspace}",
                                                                 f"{LABEL}.endpoint={endpoint}"]})
    for container in found:
        try:
            container.remove(force=True)
        except Exception:
            pass
    return len(found)
