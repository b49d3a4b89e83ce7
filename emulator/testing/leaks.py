"""What a test's amlemu work left running: processes and containers of one local workspace.

A workspace's processes are its endpoint hosts (``python -m emulator.endpoints.host <workspace-dir>
<endpoint>``), their replicas, job supervisors (``python -m emulator.jobs.supervisor <workspace-dir>
<job>``), orchestrators and the jobs' own commands. Not all of them name the workspace folder on their
command line (a replica carries it in ``AZUREML_MODEL_DIR``, a training script in
``MLFLOW_TRACKING_URI``, a job runs in a folder below it), so a process belongs to the workspace when its
command line, any of its environment variables or its working folder points into the workspace folder.
Only this user's processes can be read that way, which is exactly the set a test can have started.

Containers are found by amlemu's labels (``com.amlemu.workspace`` and ``com.amlemu.home``), and only
when a Docker engine answers: the leak check never makes Docker a requirement.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from emulator.runtime.proctree import kill_tree


@dataclass(frozen=True)
class LeftProcess:
    """A live process that belongs to a workspace."""

    pid: int
    cmdline: str

    def __str__(self) -> str:
        return f"process {self.pid}: {self.cmdline[:1000]}"


@dataclass(frozen=True)
class LeftContainer:
    """A container labelled for a workspace (running or not: both hold resources)."""

    id: str
    name: str
    status: str

    def __str__(self) -> str:
        return f"container {self.name} ({self.id[:12]}, {self.status})"


def _ancestors() -> set[int]:
    """This process and its ancestors: they mention a test's folders without being its work."""
    found, pid = set(), os.getpid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found


def _live_processes():
    """``(pid, cmdline bytes, environ bytes or b"", cwd or "")`` of every live, non-zombie process we may read."""
    skip = _ancestors()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in skip:
            continue
        proc = Path("/proc", entry)
        try:
            if proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            cmdline = proc.joinpath("cmdline").read_bytes()
        except OSError:
            continue
        try:
            environ = proc.joinpath("environ").read_bytes()
            cwd = os.readlink(proc / "cwd")
        except OSError:  # another user's process: not ours to have leaked
            continue
        yield int(entry), cmdline, environ, cwd


def processes_mentioning(text: str) -> list[LeftProcess]:
    """Live processes (not this one or its ancestors) whose command line contains ``text``."""
    needle = text.encode()
    return [
        LeftProcess(pid, cmdline.replace(b"\0", b" ").decode(errors="replace").strip())
        for pid, cmdline, _, _ in _live_processes()
        if needle in cmdline
    ]


def processes_under(folder: Path) -> list[LeftProcess]:
    """Live processes whose command line, environment or working folder points into ``folder``."""
    root = str(Path(folder).resolve())
    plain = str(folder)
    needles = {root.encode(), plain.encode()}
    found = []
    for pid, cmdline, environ, cwd in _live_processes():
        in_cwd = cwd == root or cwd.startswith(root + "/")
        if in_cwd or any(n in cmdline or n in environ for n in needles):
            found.append(LeftProcess(pid, cmdline.replace(b"\0", b" ").decode(errors="replace").strip()))
    return found


def _docker():
    """The Docker client if an engine answers (probed once per process), else None."""
    global _engine
    if _engine is None:
        if not (os.environ.get("DOCKER_HOST") or Path("/var/run/docker.sock").exists()):
            _engine = False
        else:
            from emulator.runtime.engine import DockerUnavailable, docker_client  # the Docker SDK: only when there

            try:
                _engine = docker_client()
            except DockerUnavailable:
                _engine = False
    return _engine or None


_engine = None


def containers_of(home: Path, workspace: str) -> list[LeftContainer]:
    """Containers amlemu labelled for ``workspace`` of the state folder ``home`` (none without an engine)."""
    client = _docker()
    if client is None:
        return []
    from emulator.runtime.engine import HOME_LABEL, LABEL

    labels = [f"{LABEL}.workspace={workspace}"]
    found = client.containers.list(all=True, ignore_removed=True, filters={"label": labels})
    home_value = str(Path(home).resolve())
    return [
        LeftContainer(c.id, c.name, c.status)
        for c in found
        if c.labels.get(HOME_LABEL, home_value) == home_value  # a replica of another home's same-named workspace
    ]


def left_running(home: Path, workspace: str) -> list[LeftProcess | LeftContainer]:
    """Everything of ``workspace`` (under the state folder ``home``) still running or still there."""
    folder = Path(home) / "workspaces" / workspace
    return [*processes_under(folder), *containers_of(home, workspace)]


def stop_workspace(home: Path, workspace: str) -> list[LeftProcess | LeftContainer]:
    """Stop what ``workspace`` left: its endpoint hosts the orderly way first (they stop their replicas), then any
    process that remains, then its containers. Returns what was found before stopping."""
    from emulator.endpoints import service  # the engine: only a workspace that ran something needs it
    from emulator.store import WorkspaceStore

    left = left_running(home, workspace)
    if not left:
        return left
    folder = Path(home) / "workspaces" / workspace
    if folder.is_dir():
        store = WorkspaceStore(folder, workspace)
        for record in service.records.list_endpoints(store):
            service.stop_host(store, record["name"])
    for process in processes_under(folder):
        kill_tree(process.pid)
    client = _docker()
    for container in containers_of(home, workspace) if client else []:
        try:
            client.containers.get(container.id).remove(force=True)
        except Exception:  # already gone (removed with its replica set): nothing left to stop
            pass
    return left
