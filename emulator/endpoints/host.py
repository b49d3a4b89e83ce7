"""The endpoint host: the long-lived process behind one online endpoint.

Run as ``python -m emulator.endpoints.host <workspace-dir> <endpoint>``; started on
demand by :mod:`emulator.endpoints.service` (no separate "start the server"
step) and listed by ``amlemu system status``. It binds the endpoint's port on
127.0.0.1 (kept in the store, so the scoring URI survives restarts), runs the
:class:`~emulator.endpoints.gateway.Gateway`, and owns one
:class:`~emulator.endpoints.replicas.ReplicaSet` per deployment. Process
replicas die with it (``PR_SET_PDEATHSIG``), so nothing is left running behind it.

Control routes (``/.amlemu/...``, admin key only): ``reload`` re-reads the store
(auth, keys, traffic at once; new deployment generations are started in the
background and write ``Succeeded``/``Failed`` back), ``status``, ``stop``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from emulator.endpoints import faults, http11, records
from emulator.endpoints.gateway import Gateway
from emulator.endpoints.launch import ReplicaLauncher
from emulator.endpoints.replicas import ReplicaFailed, ReplicaSet
from emulator.errors import EmulatorError, ResourceNotFound
from emulator.runtime.proctree import start_time
from emulator.store import WorkspaceStore
from emulator.store.secrets import workspace_secret

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import DeploymentRecord, EndpointRecord

#: fields whose change needs new replicas; others (instance_count, request_settings, ...) apply in place
_REPLICA_FIELDS = (
    "model",
    "code",
    "scoring_script",
    "environment_resolved",
    "environment_variables",
    "runtime",
    "liveness_probe",
    "readiness_probe",
    "type",
)


def host_file(store: WorkspaceStore, endpoint: str) -> Path:
    return records.endpoint_dir(store, endpoint) / "host.json"


class Host:
    def __init__(self, store: WorkspaceStore, name: str):
        self.store, self.name = store, name
        self.lock = asyncio.Lock()
        self.stopped = asyncio.Event()
        self.applying: dict[str, int] = {}  # deployment -> generation being started
        self.gateway: Gateway | None = None

    def _endpoint(self) -> EndpointRecord:
        endpoint = records.get_endpoint(self.store, self.name)
        endpoint["workspace_secret"] = workspace_secret(self.store.root)  # verifies the callers of a private endpoint
        return endpoint

    def _event(self, deployment: str, line: str) -> None:
        folder = records.deployment_dir(self.store, self.name, deployment) / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "deployment.log", "a") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")

    # -- lifecycle ---------------------------------------------------------------------------------
    async def run(self) -> None:
        endpoint = self._endpoint()
        if any(d.get("runtime") in ("docker", "auto") for d in records.list_deployments(self.store, self.name)):
            try:  # containers a crashed host left behind
                from emulator.endpoints.docker_replica import remove_leftovers

                await asyncio.to_thread(remove_leftovers, self.store.name, self.name)
            except Exception as exc:
                print(f"could not look for leftover containers: {exc}", file=sys.stderr)
        self.gateway = Gateway(endpoint, self.admin)
        server = None
        for attempt in range(50):  # a previous host may still be releasing the port
            try:
                server = await asyncio.get_running_loop().create_server(
                    self.gateway.connection, "127.0.0.1", endpoint["port"], reuse_address=True, backlog=1024
                )
                break
            except OSError as exc:
                if attempt == 49:
                    print(
                        f"cannot listen on 127.0.0.1:{endpoint['port']} ({exc}); another program holds the "
                        "endpoint's port. Stop it, or delete and re-create the endpoint.",
                        file=sys.stderr,
                    )
                    raise SystemExit(4)
                await asyncio.sleep(0.1)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stopped.set)
        loop.add_signal_handler(signal.SIGINT, self.stopped.set)
        host_file(self.store, self.name).write_text(
            json.dumps({"pid": os.getpid(), "start": start_time(os.getpid()), "port": endpoint["port"]})
        )
        await self.reload()
        watchdog = asyncio.create_task(self._watch_store())
        await self.stopped.wait()
        watchdog.cancel()
        server.close()
        await asyncio.gather(*(s.stop(drain=True) for s in self.gateway.sets.values()), return_exceptions=True)

    async def _watch_store(self) -> None:
        """Stop when the workspace or the endpoint is gone (deleted under a running host)."""
        while not self.stopped.is_set():
            await asyncio.sleep(2)
            try:
                gone = not self.store.db_path.exists()
                if not gone:
                    records.get_endpoint(self.store, self.name)
            except Exception:  # the record (or the whole workspace) was deleted
                gone = True
            if gone:
                print(f"endpoint '{self.name}' or its workspace is gone; stopping", file=sys.stderr)
                self.stopped.set()

    # -- control routes ---------------------------------------------------------------------------------
    async def admin(self, request: http11.Message) -> tuple[int, dict, bytes]:
        route = request.path.removeprefix("/.amlemu/")
        if route == "reload" and request.method == "POST":
            await self.reload()
            return 200, {"Content-Type": "application/json"}, b'{"reloaded": true}'
        if route == "status":
            body = {
                "pid": os.getpid(),
                "requests_served": self.gateway.requests_served,
                "applying": self.applying,
                "deployments": {k: s.view() for k, s in self.gateway.sets.items()},
            }
            return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()
        if route == "stop" and request.method == "POST":
            asyncio.get_running_loop().call_later(0.05, self.stopped.set)
            return 200, {"Content-Type": "application/json"}, b'{"stopping": true}'
        return 404, {"Content-Type": "application/json"}, b'{"error": "unknown control route"}'

    async def reload(self) -> None:
        """Apply the store: credentials and traffic now; deployment changes in the background."""
        async with self.lock:
            try:
                endpoint = self._endpoint()
            except ResourceNotFound:
                self.stopped.set()
                return
            deployments = {d["deployment_name"]: d for d in records.list_deployments(self.store, self.name)}
            for gone in set(self.gateway.sets) - set(deployments):
                replica_set = self.gateway.sets.pop(gone)
                await replica_set.stop(drain=True)
            self.gateway.configure(endpoint)
            self.gateway.faults = faults.installed(self.store, self.name, self.gateway.faults)  # aml_faults
            for name, deployment in deployments.items():
                current = self.gateway.sets.get(name)
                running = current.generation if current else None
                if deployment["generation"] in (running, self.applying.get(name)):
                    continue
                if current is None and deployment["provisioning_state"] == "Failed":
                    continue  # failed before: wait for the next update instead of retrying forever
                self.applying[name] = deployment["generation"]
                asyncio.create_task(self.apply(deployment))

    async def apply(self, deployment: DeploymentRecord) -> None:
        """Bring one deployment to its recorded generation, then record the outcome."""
        name, generation = deployment["deployment_name"], deployment["generation"]
        current = self.gateway.sets.get(name)
        try:
            if (
                current
                and all(current.deployment.get(k) == deployment.get(k) for k in _REPLICA_FIELDS)
                and current.deployment["scale_settings"]["type"] == deployment["scale_settings"]["type"]
            ):
                current.deployment = deployment
                current.generation = generation
                current.per_instance = deployment["request_settings"]["max_concurrent_requests_per_instance"]
                self._event(name, f"generation {generation}: scaling to {current.target_count} replica(s) in place")
                await current.scale_to(current.target_count)
            else:
                log_dir = records.deployment_dir(self.store, self.name, name) / "logs"
                fresh = ReplicaSet(
                    deployment,
                    ReplicaLauncher(self.store, deployment, log_dir),
                    on_event=lambda line: self._event(name, line),
                )
                self._event(name, f"generation {generation}: starting {fresh.target_count} replica(s)")
                recovering = current is None and deployment["provisioning_state"] == "Succeeded"
                if recovering:  # a host restart (reboot, `amlemu system stop`): its traffic waits for the replicas
                    self.gateway.sets[name] = fresh
                try:
                    await fresh.start()
                except BaseException:
                    if recovering and self.gateway.sets.get(name) is fresh:
                        del self.gateway.sets[name]
                    raise
                self.gateway.sets[name] = fresh  # new replicas serve before the old ones drain
                if current:
                    await current.stop(drain=True)
            records.set_deployment_state(
                self.store, self.name, name, generation=generation, provisioning_state="Succeeded", error=None
            )
            self._event(name, f"generation {generation}: Succeeded")
        except (ReplicaFailed, Exception) as exc:  # any failure is the deployment's, recorded with its reason
            # amlemu's own errors (an environment that does not build, ...) say what happened; others get their type
            known = isinstance(exc, (ReplicaFailed, EmulatorError))
            message = str(exc) if known else f"{type(exc).__name__}: {exc}"
            self._event(name, f"generation {generation}: Failed: {message}")
            records.set_deployment_state(
                self.store, self.name, name, generation=generation, provisioning_state="Failed", error=message
            )
        finally:
            if self.applying.get(name) == generation:
                del self.applying[name]


def main(argv: list[str]) -> int:
    workspace_dir, name = Path(argv[0]), argv[1]
    store = WorkspaceStore(workspace_dir, workspace_dir.name)
    try:
        import uvloop  # only the running host needs uvloop (the CLI imports this module)

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(Host(store, name).run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
