"""The state directory holds the endpoint keys: it is the owner's only, from its creation (issue #10, part 4)."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from emulator import config
from emulator.endpoints import keys
from emulator.store import open_store

NOBODY = 65534


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def read_as_nobody(path: Path) -> str:
    """'denied', 'read' or the error: what uid/gid 65534 gets opening ``path`` (a forked child drops to it)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 3
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            with open(path, "rb") as f:
                f.read(1)
            code = 0
        except PermissionError:
            code = 13
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return {0: "read", 13: "denied"}.get(os.waitstatus_to_exitcode(status), f"exit {status}")


def test_a_new_home_workspace_and_store_are_the_owner_s_only(amlemu_home):
    assert not amlemu_home.exists()
    store = open_store()
    store.put_asset("online-endpoint-keys", "e1", "1", keys.new_credentials())  # a write: the WAL files exist
    root = config.workspace_dir()
    assert mode(amlemu_home) == 0o700
    assert mode(amlemu_home / "workspaces") == 0o700 and mode(root) == 0o700
    for name in ("store.db", "store.db-wal", "store.db-shm", ".store.lock"):
        assert mode(root / name) == 0o600, name


def test_a_store_an_older_amlemu_left_open_is_closed_when_opened(tmp_path):
    root = tmp_path / "ws"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    (root / "store.db").touch()
    os.chmod(root / "store.db", 0o644)
    from emulator.store import WorkspaceStore

    WorkspaceStore(root, "ws")
    assert mode(root) == 0o700 and mode(root / "store.db") == 0o600


@pytest.mark.skipif(os.getuid() != 0, reason="only root can become another user to try the read")
def test_another_local_user_cannot_read_the_keys(amlemu_home):
    store = open_store()
    store.put_asset("online-endpoint-keys", "e1", "1", keys.new_credentials())
    # the check itself works: the same user reads a world-readable file in an open folder
    open_dir = Path(tempfile.mkdtemp())
    try:
        os.chmod(open_dir, 0o755)
        (open_dir / "readable").write_text("x")
        os.chmod(open_dir / "readable", 0o644)
        assert read_as_nobody(open_dir / "readable") == "read"
    finally:
        (open_dir / "readable").unlink()
        open_dir.rmdir()
    for name in ("store.db", "store.db-wal"):
        assert read_as_nobody(store.root / name) == "denied", name
    # even with the home folder opened by hand, the workspace folder and the files stay closed
    os.chmod(amlemu_home, 0o755)
    assert read_as_nobody(store.root / "store.db") == "denied"


def test_the_workspace_secret_is_created_once_whole_and_private(tmp_path):
    """Processes racing to create it all read the same complete secret; no staging file is left."""
    from concurrent.futures import ProcessPoolExecutor

    from emulator.store.secrets import workspace_secret

    with ProcessPoolExecutor(4) as pool:
        secrets_read = list(pool.map(workspace_secret, [tmp_path] * 16))
    assert len(set(secrets_read)) == 1 and len(secrets_read[0]) == 32
    assert [p.name for p in tmp_path.iterdir()] == ["workspace.secret"]
    assert (tmp_path / "workspace.secret").stat().st_mode & 0o777 == 0o600
