"""Follow a job's ``user_logs/std_log.txt`` until the job ends, as ``az ml job stream`` does."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from emulator.errors import JobFailed
from emulator.jobs import lifecycle
from emulator.store import WorkspaceStore
from emulator.store.db import TERMINAL


def stream(store: WorkspaceStore, name: str, out: TextIO = sys.stdout) -> dict:
    """Print the job's log as it grows; return the final job, raise JobFailed if it did not complete."""
    job = lifecycle.get(store, name)
    log_path = store.job_dir(name) / "artifacts" / "user_logs" / "std_log.txt"
    out.write(f"RunId: {name}\nWeb View: {store.job_dir(name)}\n\nStreaming user_logs/std_log.txt\n{'=' * 31}\n\n")
    out.flush()
    offset, poll = 0, 0.02
    while True:
        ended = job["status"] in TERMINAL
        try:
            with open(log_path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
        if chunk:
            offset += len(chunk)
            out.write(chunk.decode(errors="replace"))
            out.flush()
            poll = 0.02
        elif ended:
            break
        else:
            time.sleep(poll)
            poll = min(poll * 1.5, 0.25)
            job = lifecycle.get(store, name)
    out.write(f"\nExecution Summary\n=================\nRunId: {name}\nStatus: {job['status']}\n")
    if job["status"] != "Completed":
        out.write(f"Error: {job['error']}\n")
    out.flush()
    if job["status"] != "Completed":
        raise JobFailed(f"Job '{name}' ended {job['status']}: {job['error']}")
    return job
