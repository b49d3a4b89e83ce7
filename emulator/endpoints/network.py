"""Who is calling: ``public_network_access: disabled`` lets in only the workspace's own jobs.

Azure puts such an endpoint behind the workspace's private endpoint, so only
callers inside the workspace's virtual network reach it. Locally the gateway
looks at the TCP peer of a loopback connection: it finds the process that owns
the client socket (``/proc/net/tcp`` and ``/proc/<pid>/fd``) and accepts it when
that process, or one of its parents, holds a job credential of the same
workspace (:mod:`emulator.store.secrets`): environment variables alone prove
nothing, since any local process can set them. The answer is cached per
connection and computed off the event loop.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.store.secrets import JOB_TOKEN_ENV, is_job_token

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import EndpointRecord


def _socket_inode(peer: Any, server_port: int | None) -> str | None:
    port = peer[1]
    want_local = f"{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if local.rsplit(":", 1)[1] == want_local and (
                server_port is None or remote.rsplit(":", 1)[1] == f"{server_port:04X}"
            ):
                return inode
    return None


def _owner(inode: str) -> int | None:
    needle = f"socket:[{inode}]"
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        fd_dir = f"/proc/{pid}/fd"
        try:
            for fd in os.listdir(fd_dir):
                try:
                    if os.readlink(f"{fd_dir}/{fd}") == needle:
                        return int(pid)
                except OSError:
                    continue
        except OSError:
            continue
    return None


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    out = {}
    for item in raw.split(b"\0"):
        key, _, value = item.partition(b"=")
        out[key.decode(errors="replace")] = value.decode(errors="replace")
    return out


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def caller_in_workspace(peer: Any, endpoint: EndpointRecord, secret: bytes) -> bool:
    """Whether the TCP peer is a process of one of this workspace's jobs: the process that owns the client
    socket, or one of its parents, carries a job credential signed with the workspace ``secret``.

    It reads /proc (about 8 ms on a busy machine): call it off the event loop.
    """
    if not peer or peer[0] not in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        return False
    inode = _socket_inode(peer, endpoint.get("port"))
    pid = _owner(inode) if inode else None
    for _ in range(16):  # the caller may be a child of the job's command
        if not pid or pid == 1:
            return False
        env = _environ(pid)
        if is_job_token(secret, env.get("AZUREML_RUN_ID", ""), env.get(JOB_TOKEN_ENV, "")):
            return True
        pid = _parent(pid)
    return False
