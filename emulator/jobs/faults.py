"""Injected job faults: a job that fails at start with a given Azure error, a node lost under a running job.

The faults are records of the workspace's store (:mod:`emulator.store.faults`, set by ``aml_faults``); a job's
supervisor meets them at two points of its run:

- :func:`fail_at_start`, once the job is Preparing: the next job takes a ``job_start`` fault and fails with its
  error code and message, as Azure shows a job that failed before its command ran (status ``Failed``, run
  history's ``error`` with that code and message). The code is kept beside the job (:func:`error_code`), since a
  job's record holds only the message.
- :func:`lose_node_later`, once the command runs on a compute cluster: the job takes a ``node_lost`` fault for
  that cluster, and ``after_seconds`` later its processes die at once (SIGKILL, no warning, as when a VM goes
  away). The supervisor then reports what it reports for any lost node: the job fails, naming the node, and the
  node leaves the pool (a new one replaces it when needed). On a dedicated cluster Azure fails the job too; a
  preempted low-priority job Azure restarts, which amlemu does not emulate (``aml_faults`` refuses that case).
"""

from __future__ import annotations

import json
import os
import signal
import threading
from typing import TYPE_CHECKING, Any

from emulator.errors import EmulatorError
from emulator.runtime.proctree import descendants, start_time
from emulator.store import WorkspaceStore
from emulator.store import faults as store_faults

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import ComputeRecord, JobRecord

#: beside a job's record, the Azure error code of a failure that has one (the record keeps the message)
ERROR_FILE = "error.json"


class InjectedStartFailure(EmulatorError):
    """The error a ``job_start`` fault makes the job fail with (its code and message are the fault's)."""


def fail_at_start(store: WorkspaceStore, name: str) -> None:
    """Raise the next ``job_start`` fault's error for job ``name`` (and keep its code beside the job), if one is set.

    Raises:
        InjectedStartFailure: a fault was set; the supervisor fails the job with its message.
    """
    fault = store_faults.take(store, "job_start")
    if fault is None:
        return
    code, message = fault.detail["code"], fault.detail["message"]
    (store.job_dir(name) / ERROR_FILE).write_text(json.dumps({"code": code, "message": message}))
    raise InjectedStartFailure(message, code=code)


def error_code(store: WorkspaceStore, job: JobRecord) -> str:
    """The Azure error code of a Failed or Canceled job: the one it failed with, else ``UserError``/``Canceled``."""
    try:
        return json.loads((store.job_dir(job["name"]) / ERROR_FILE).read_text())["code"]
    except (OSError, ValueError, KeyError, TypeError):
        return "UserError" if job["status"] == "Failed" else "Canceled"


def lose_node_later(store: WorkspaceStore, compute: ComputeRecord | None, handles: list[Any]) -> None:
    """Arm the next ``node_lost`` fault of the job's cluster: its processes are killed ``after_seconds`` from now."""
    if compute is None or compute["type"] != "amlcompute":
        return
    fault = store_faults.take(store, "node_lost", compute["name"])
    if fault is None:
        return
    victims = [(h.pid, start_time(h.pid)) for h in handles]
    timer = threading.Timer(float(fault.detail.get("after_seconds", 0)), _lose, (victims,))
    timer.daemon = True
    timer.start()


def _lose(victims: list[tuple[int, str | None]]) -> None:
    """The node goes away: every process of the job on it dies at once (those that already ended are left)."""
    for pid, started in victims:
        if started is None or start_time(pid) != started:  # ended (its pid may be someone else's by now)
            continue
        for target in [*descendants(pid), pid]:
            try:
                os.kill(target, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
