"""``aml_faults``: Azure ML misbehaving on purpose, for one test, so a project can test how it copes.

Each method makes the local emulator answer as Azure does when that goes wrong (the answers are named in the
engine modules that give them):

- ``endpoint(name, status, count=1, deployment=None)``: the endpoint's next ``count`` scoring requests get 429
  (*Too many pending requests*), 503, or ``"timeout"``: 408 once the deployment's ``request_timeout_ms`` has
  passed (:mod:`emulator.endpoints.faults`);
- ``crash_replica(endpoint, deployment=None)``: one replica's process dies at once; the endpoint's host restarts
  it, as Azure restarts a crashed container, and requests wait for it meanwhile;
- ``job_start(error_code, message, count=1)``: the next ``count`` jobs fail at start with that Azure error
  (status ``Failed``; run history's ``error`` has the code and message) (:mod:`emulator.jobs.faults`);
- ``compute_quota(name=None, vcpu_quota=0, count=1)``: creating that compute (or any) is refused with Azure's
  400 ``ClusterMinNodesExceedCoreQuota`` (:mod:`emulator.compute.faults`);
- ``node_lost(cluster, after_seconds=0, count=1)``: the next job running on the cluster loses its node that many
  seconds after its command starts: the job fails naming the node, and the node is replaced.

Faults are records of the test's workspace (:mod:`emulator.store.faults`), scoped to the test: teardown clears
them, also after a failure. They exist on amlemu's local backend only: on Azure nothing can make the service
misbehave on demand, so the fixture refuses ``--aml-backend azure`` and says to mark the test ``aml_local_only``.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Any

from emulator.errors import EmulatorError
from emulator.testing.workspace import AmlTestFailure, ScopedWorkspace, one_line

LOCAL_ONLY = (
    "faults are injected into amlemu's local emulator only: Azure ML cannot be made to answer 429/503, fail a job "
    "or lose a node on demand. Fix: mark the test @pytest.mark.aml_local_only (it is then skipped with "
    "--aml-backend azure)."
)


@dataclass(frozen=True)
class CrashedReplica:
    """The replica ``crash_replica`` killed: its name and the process it was."""

    endpoint: str
    deployment: str
    name: str
    pid: int


def _name(thing: Any) -> str:
    """A name given as text, or taken from what a fixture returned (``aml_deploy``'s handle, an SDK entity)."""
    return thing if isinstance(thing, str) else str(getattr(thing, "name", thing))


def _count(count: Any, method: str) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise AmlTestFailure(f"aml_faults.{method}: count must be a whole number >= 1; got {count!r}.")
    return count


class AmlFaults:
    """The ``aml_faults`` fixture's object: faults of one test's workspace, cleared at teardown."""

    def __init__(self, ws: ScopedWorkspace, scope: str):
        if not ws.is_local:
            raise AmlTestFailure(f"aml_faults: {LOCAL_ONLY}")
        self._ws, self.scope = ws, scope
        self.store = ws.client.store

    # -- endpoints ---------------------------------------------------------------------------------------------
    def endpoint(self, name: Any, status: int | str, count: int = 1, deployment: str | None = None):
        """The next ``count`` requests to endpoint ``name`` (routed to ``deployment``, or to any) answer ``status``:
        429, 503, or ``"timeout"`` (408 after the deployment's ``request_timeout_ms``)."""
        __tracebackhide__ = True
        from emulator.endpoints.faults import STATUSES

        if status not in STATUSES:
            raise AmlTestFailure(
                f"aml_faults.endpoint: status {status!r} is not one Azure answers for an overloaded or stuck "
                f"endpoint; use {', '.join(map(repr, STATUSES))}."
            )
        endpoint = _name(name)
        fault = self._inject(
            "endpoint", endpoint, {"status": status, "deployment": deployment}, _count(count, "endpoint")
        )
        self._tell_host(endpoint)
        return fault

    def crash_replica(self, endpoint: Any, deployment: str | None = None, replica: str | None = None):
        """Kill one replica of ``deployment`` (the endpoint's only one when None) at once, as a crashing container
        dies; the endpoint's host restarts it. Returns the :class:`CrashedReplica`."""
        __tracebackhide__ = True
        from emulator.endpoints import records, service

        name = _name(endpoint)
        try:
            if not service.host_state(self.store, name):
                raise AmlTestFailure(f"aml_faults.crash_replica: endpoint '{name}' runs no replica (no host).")
            view = service.status(self.store, name)["deployments"]
        except EmulatorError as exc:
            raise AmlTestFailure(f"aml_faults.crash_replica: endpoint '{name}': {one_line(exc)}") from None
        if deployment is None and len(view) != 1:
            raise AmlTestFailure(
                f"aml_faults.crash_replica: endpoint '{name}' has deployments {sorted(view) or 'none'}; name one "
                "with deployment=."
            )
        deployment = deployment or next(iter(view))
        if deployment not in view:
            raise AmlTestFailure(
                f"aml_faults.crash_replica: endpoint '{name}' runs no deployment '{deployment}' (it runs "
                f"{sorted(view) or 'none'})."
            )
        running = [r for r in view[deployment]["replicas"] if r["ready"] and (replica is None or r["name"] == replica)]
        if not running:
            raise AmlTestFailure(
                f"aml_faults.crash_replica: deployment '{deployment}' of endpoint '{name}' has no ready replica"
                + (f" named '{replica}'" if replica else "")
                + "."
            )
        chosen = running[0]
        if records.get_deployment(self.store, name, deployment).get("runtime") == "docker":
            _kill_container(self.store.name, name, chosen["name"])
        else:
            _kill_process(chosen["pid"])
        return CrashedReplica(name, deployment, chosen["name"], chosen["pid"])

    # -- jobs and computes -------------------------------------------------------------------------------------
    def job_start(self, error_code: str, message: str, count: int = 1):
        """The next ``count`` jobs of the workspace fail at start with Azure error ``error_code`` and ``message``
        (``Failed``; the code and message are what run history's ``error`` shows)."""
        __tracebackhide__ = True
        if not (isinstance(error_code, str) and error_code and isinstance(message, str) and message):
            raise AmlTestFailure(
                "aml_faults.job_start needs an Azure error code and a message, e.g. "
                "job_start('UserError', 'AzureMLCompute job failed. ...')."
            )
        return self._inject("job_start", None, {"code": error_code, "message": message}, _count(count, "job_start"))

    def compute_quota(self, name: Any = None, vcpu_quota: int = 0, count: int = 1):
        """The next ``count`` creations of compute ``name`` (None: of any cluster or instance) are refused with
        Azure's 400 ``ClusterMinNodesExceedCoreQuota`` (a VM family quota of ``vcpu_quota`` vCPUs)."""
        __tracebackhide__ = True
        if isinstance(vcpu_quota, bool) or not isinstance(vcpu_quota, int) or vcpu_quota < 0:
            raise AmlTestFailure(
                f"aml_faults.compute_quota: vcpu_quota must be a whole number >= 0; got {vcpu_quota!r}."
            )
        target = None if name is None else _name(name)
        return self._inject("compute_quota", target, {"vcpu_quota": vcpu_quota}, _count(count, "compute_quota"))

    def node_lost(self, cluster: Any, after_seconds: float = 0.0, count: int = 1):
        """The next ``count`` jobs on compute cluster ``cluster`` lose their node ``after_seconds`` after their command
        starts: each fails, naming the lost node, which leaves the pool."""
        __tracebackhide__ = True
        from emulator.compute import service as computes

        name = _name(cluster)
        try:
            record = computes.get(self.store, name)
        except EmulatorError as exc:
            raise AmlTestFailure(f"aml_faults.node_lost: {one_line(exc)} Create the cluster first.") from None
        if record["type"] != "amlcompute":
            raise AmlTestFailure(f"aml_faults.node_lost: '{name}' is a {record['type']}; name a compute cluster.")
        if record.get("tier") == "low_priority":
            raise AmlTestFailure(
                f"aml_faults.node_lost: cluster '{name}' is low priority. Azure restarts a job whose low-priority "
                "node is preempted, which amlemu does not emulate; use a dedicated cluster."
            )
        if isinstance(after_seconds, bool) or not isinstance(after_seconds, (int, float)) or after_seconds < 0:
            raise AmlTestFailure(f"aml_faults.node_lost: after_seconds must be >= 0; got {after_seconds!r}.")
        return self._inject("node_lost", name, {"after_seconds": float(after_seconds)}, _count(count, "node_lost"))

    # -- scope -------------------------------------------------------------------------------------------------
    def active(self) -> list[Any]:
        """This test's faults that still apply (``endpoint`` faults count down in the endpoint's host, not here)."""
        from emulator.store import faults

        return [f for f in faults.active(self.store) if f.scope == self.scope]

    def clear(self) -> None:
        """Remove every fault of this test (teardown does it); endpoints answer as usual again at once."""
        from emulator.store import faults

        cleared = faults.clear(self.store, self.scope)
        for endpoint in sorted({f.target for f in cleared if f.kind == "endpoint"}):
            self._tell_host(endpoint)

    def _inject(self, kind: str, target: str | None, detail: dict[str, Any], count: int):
        from emulator.store import faults

        try:
            return faults.inject(self.store, kind, scope=self.scope, target=target, detail=detail, count=count)
        except EmulatorError as exc:
            raise AmlTestFailure(f"aml_faults.{kind}: {one_line(exc)}") from None

    def _tell_host(self, endpoint: str) -> None:
        """A running host reads the endpoint's faults now (one that starts later reads them as it starts)."""
        from emulator.endpoints import records, service

        if service.host_state(self.store, endpoint):
            service.control(self.store, records.get_endpoint(self.store, endpoint), "reload")


def _kill_process(pid: int) -> None:
    """SIGKILL a replica and what it started: no chance to clean up, as when a container crashes."""
    from emulator.runtime.proctree import descendants

    for target in [*descendants(pid), pid]:
        try:
            os.kill(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _kill_container(workspace: str, endpoint: str, replica: str) -> None:
    """Kill a docker replica's container (its processes belong to the engine's user, not ours)."""
    from emulator.runtime.engine import LABEL, docker_client

    labels = [f"{LABEL}.workspace={workspace}", f"{LABEL}.endpoint={endpoint}", f"{LABEL}.replica={replica}"]
    for container in docker_client().containers.list(filters={"label": labels}):
        container.kill()
