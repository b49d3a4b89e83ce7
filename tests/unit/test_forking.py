"""Supervisors forked from an orchestrator: detached, logging to their file, named as if exec'd."""

from __future__ import annotations

import json
import os
import sys
import threading

from emulator.jobs import forking
from emulator.store import WorkspaceStore

CHILD = """
import json, os, sys

def main(argv):
    from emulator.store import WorkspaceStore
    from pathlib import Path
    root = Path(argv[0])
    store = WorkspaceStore(root, root.name)  # its own connection
    store.query("SELECT 1")
    print("to the log")
    sys.stderr.write("errors too\\n")
    (root / "child.json").write_text(json.dumps({
        "pid": os.getpid(), "sid": os.getsid(0), "cwd": os.getcwd(), "argv": argv,
        "cmdline": open("/proc/self/cmdline", "rb").read().replace(b"\\0", b" ").decode().strip(),
        "stdin": os.readlink("/proc/self/fd/0")}))
    if argv[1] == "fail":
        raise RuntimeError("boom")
"""


def test_a_forked_supervisor_is_detached_logs_to_its_file_and_looks_exec_d(tmp_path, monkeypatch):
    (tmp_path / "fake_supervisor.py").write_text(CHILD)
    monkeypatch.syspath_prepend(str(tmp_path))
    root = tmp_path / "ws"
    store = WorkspaceStore(root, "ws")
    store.query("SELECT 1")  # the parent has a connection open before the fork
    log = tmp_path / "supervisor.txt"
    # the rule, not this process's state: an xdist worker may hold threads left by earlier tests
    assert forking.can_fork() == (threading.active_count() == 1)
    child = forking.fork_main(store, "fake_supervisor", "job_1", log)
    assert child.wait() == 0 and child.poll() == 0
    seen = json.loads((root / "child.json").read_text())
    assert seen["pid"] == child.pid and seen["sid"] == child.pid != os.getsid(0)  # its own session
    assert seen["cwd"] == str(root) and seen["argv"] == [str(root), "job_1"]
    assert seen["cmdline"] == f"{sys.executable} -m fake_supervisor {root} job_1"  # as an exec'd one would show
    assert seen["stdin"] == "/dev/null"
    assert log.read_text() == "to the log\nerrors too\n"
    assert store.query("SELECT 1")[0][0] == 1  # the parent reopens its connection


def test_a_failing_forked_supervisor_exits_non_zero_with_its_traceback_in_the_log(tmp_path, monkeypatch):
    (tmp_path / "fake_supervisor.py").write_text(CHILD)
    monkeypatch.syspath_prepend(str(tmp_path))
    root = tmp_path / "ws"
    log = tmp_path / "supervisor.txt"
    child = forking.fork_main(WorkspaceStore(root, "ws"), "fake_supervisor", "fail", log)
    assert child.wait() == 1
    assert "RuntimeError: boom" in log.read_text()


def test_no_fork_while_another_thread_runs():
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert not forking.can_fork()
    finally:
        release.set()
        other.join()
