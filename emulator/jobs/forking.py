"""Start a child job's supervisor by forking the parent job's orchestrator.

A sweep, AutoML or pipeline orchestrator starts one supervisor per child job. Started as a new
interpreter (``python -m emulator.jobs.supervisor``), a supervisor costs about 100 ms of CPU
to import before it does anything, which on a small machine is taken from the trials running
beside it. The orchestrator has already imported everything a supervisor needs, so it forks
one instead: a few milliseconds, and memory shared copy-on-write.

The forked child is what ``subprocess.Popen(..., start_new_session=True)`` would have started:
its own session, stdin from ``/dev/null``, stdout and stderr to the job's ``supervisor.txt``,
the store's folder as working directory, and a command line
(``python -m emulator.jobs.supervisor <workspace-dir> <job>``) that ``ps`` and the tools
which look for a job's processes see unchanged (``setproctitle``).

SQLite's rule is that a connection must not cross a fork: the parent closes its connection to
the store before forking (it reopens on its next query) and the child opens its own.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

import setproctitle

from emulator.store import WorkspaceStore


class ForkedChild:
    """A forked supervisor, polled and reaped as a ``subprocess.Popen`` is."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def _reap(self, flags: int) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, flags)
            except ChildProcessError:  # reaped by someone else: its exit status is gone
                self.returncode = -1
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def poll(self) -> int | None:
        return self._reap(os.WNOHANG)

    def wait(self, timeout: float | None = None) -> int | None:
        if timeout is not None:
            raise ValueError("ForkedChild.wait takes no timeout: poll() instead")
        return self._reap(0)


def can_fork() -> bool:
    """Forking is safe only from a single-threaded process (no lock can be held by a lost thread)."""
    return hasattr(os, "fork") and threading.active_count() == 1


def fork_main(store: WorkspaceStore, module: str, name: str, log_path: Path) -> ForkedChild:
    """Run ``<module>.main([<workspace-dir>, name])`` in a forked, detached child."""
    main = importlib.import_module(module).main
    title = f"{sys.executable} -m {module} {store.root} {name}"
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    store.close()  # no SQLite connection crosses the fork
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        os.close(log)
        return ForkedChild(pid)
    code = 1
    try:  # the child: never returns into the parent's code
        os.setsid()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        # the parent's sys.stdout/stderr may not be fds 1 and 2 (a test runner's capture): rebind them
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        os.chdir(store.root)
        setproctitle.setproctitle(title)
        main([str(store.root), name])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)  # no atexit handler or finalizer of the parent's runs twice
