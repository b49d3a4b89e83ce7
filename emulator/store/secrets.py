"""The workspace's own secret, and the job credential derived from it.

Azure puts an endpoint with ``public_network_access: disabled`` behind the
workspace's private network, so only the workspace's jobs reach it. Locally,
each job gets a credential in its environment (``AMLEMU_JOB_TOKEN``): an
HMAC-SHA256 of its run id under the workspace secret. The gateway finds the
process that owns a caller's socket and checks that credential in constant
time, so setting ``AZUREML_RUN_ID`` by hand no longer lets a process in: it
would need the secret, which only the owner of the workspace folder can read.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

#: the environment variable that carries a job's credential
JOB_TOKEN_ENV = "AMLEMU_JOB_TOKEN"
_FILE = "workspace.secret"


def workspace_secret(root: Path) -> bytes:
    """The secret of the workspace stored in ``root``, created on first use (0600, never rewritten).

    It is written whole to a private temporary file and then linked into place, so a reader never sees
    a partly written secret, and of two processes creating it at once, one's secret wins for both.
    """
    path = Path(root) / _FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    staged = path.with_name(f".{_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # private from its first byte
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        try:
            os.link(staged, path)
        except FileExistsError:  # another process published its secret first: take theirs
            pass
    finally:
        staged.unlink(missing_ok=True)
    return path.read_bytes()


def job_token(secret: bytes, run_id: str) -> str:
    """The credential of job ``run_id``."""
    return hmac.new(secret, run_id.encode(), hashlib.sha256).hexdigest()


def is_job_token(secret: bytes, run_id: str, token: str) -> bool:
    """Whether ``token`` is the credential of ``run_id`` (constant time)."""
    return bool(run_id) and hmac.compare_digest(job_token(secret, run_id), token)
