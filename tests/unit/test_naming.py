"""Names that become paths (emulator.naming), code snapshots (emulator.jobs.snapshot) and
staging folders (emulator.store.staging): issue #10 parts 3 and 8."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulator import naming
from emulator.errors import ValidationError
from emulator.jobs import snapshot
from emulator.store import staging

# what an attacker or a typo may pass as a name: traversal, absolute, NUL, newline, too long, look-alikes
HOSTILE = [
    "..",
    "../x",
    "../../../../escape",
    "/abs/path",
    "a/b",
    "a\0b",
    "name\n",
    " lead",
    "x" * 300,
    "\uff0fetc",
    "\uff0e\uff0e",
    "a\u2215b",
    "caf\u00e9",
    "",
    None,
    True,
    1.5,
]


@pytest.mark.parametrize("kind", sorted(naming.RULES))
@pytest.mark.parametrize("value", HOSTILE)
def test_every_kind_refuses_hostile_names(kind, value):
    assert not naming.is_valid(kind, value)
    with pytest.raises(ValidationError) as info:
        naming.check(kind, value)
    message = info.value.message
    assert naming.RULES[kind].label in message and "Azure ML takes" in message and "Rename it" in message
    if isinstance(value, str) and len(value) > 100:
        assert "(300 characters)" in message and value not in message  # not echoed in full


@pytest.mark.parametrize(
    "kind, good, bad",
    [
        ("workspace", ["default", "ws1", "my_ws-2", "a" * 33], ["ab", "a" * 34, "-ws", "w.s"]),
        ("job", ["sincere_lemon_8xq2r3kfpz", "1job", "a" * 255], ["-x", "has space", "dots.not.allowed", "a" * 256]),
        ("model", ["iris", "iris-onnx", "m_1", "v1.2", "a" * 255], ["-m", ".hidden", "a" * 256, "m:1"]),
        ("environment", ["AzureML-sklearn-1.5", "my-env"], ["-e", "e@latest", "e:1"]),
        ("version", ["1", "2.0.1", "v2", "latest"], ["-1", "1/2", "..", ".1"]),
        ("input", ["C", "training_data", "_x"], ["1x", "a-b", "a.b"]),
        ("output", ["model_dir", "out"], ["/tmp/x", "a-b", "9"]),
        ("endpoint", ["iris-ep", "abc", "a" * 32], ["ab", "1ep", "ep-", "a" * 33, "ep_1"]),
        ("deployment", ["blue", "green-2"], ["bl", "1blue", "blue-", "b_1"]),
        ("amlcompute", ["cpu-cluster", "ab", "a" * 16], ["a", "a" * 17, "1c", "c-"]),
        ("computeinstance", ["dev-box", "abc", "a" * 24], ["ab", "a" * 25]),
        ("kubernetes", ["k8s-cluster", "a" * 32], ["ab", "a" * 33]),
    ],
)
def test_rules_per_kind(kind, good, bad):
    assert [v for v in good if not naming.is_valid(kind, v)] == []
    assert [v for v in bad if naming.is_valid(kind, v)] == []


def test_integer_versions_are_text():
    assert naming.check("version", 3) == "3"


def test_confined_join_stays_inside(tmp_path):
    assert naming.confined_join(tmp_path, "models", "iris", "1") == tmp_path / "models" / "iris" / "1"
    assert naming.confined_join(tmp_path, "a/b") == tmp_path / "a" / "b"


@pytest.mark.parametrize(
    "part, needle",
    [
        ("..", "leaves"),
        ("../x", "leaves"),
        ("a/../../x", "leaves"),
        ("/etc", "absolute"),
        ("a\0b", "NUL"),
        ("", "empty"),
        ("a//b", "leaves"),
        ("x" * 256, "255 bytes"),
    ],
)
def test_confined_join_refuses(tmp_path, part, needle):
    with pytest.raises(ValidationError, match=needle):
        naming.confined_join(tmp_path, "models", part)


def test_confined_join_refuses_an_escape_through_a_symlink(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "models").symlink_to(outside)
    with pytest.raises(ValidationError, match="through a symlink"):
        naming.confined_join(root, "models", "iris")
    (root / "inside").symlink_to(root / "models2")  # a link that stays inside is fine
    assert naming.confined_join(root, "inside", "x") == root / "inside" / "x"


def test_store_folders_go_through_the_confined_join(store):
    assert store.job_dir("job_1") == store.root / "jobs" / "job_1"
    for bad in ("../x", "/tmp/x", "a\0b"):
        with pytest.raises(ValidationError):
            store.job_dir(bad)
        with pytest.raises(ValidationError):
            store.asset_dir("model", bad, "1")
        with pytest.raises(ValidationError):
            store.asset_dir("model", "iris", bad)


@pytest.mark.parametrize("workspace", ["../../../ws", "/tmp/ws", "w\uff0fs", "x" * 300, "ab"])
def test_workspace_names_are_checked(amlemu_home, monkeypatch, workspace):
    from emulator import config

    monkeypatch.setenv("AMLEMU_WORKSPACE", workspace)
    with pytest.raises(ValidationError, match="Workspace name"):
        config.workspace_dir()
    assert not amlemu_home.exists() or not any(amlemu_home.parent.glob("ws*"))


# -- code snapshots -----------------------------------------------------------------------------
def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _copied(snap: Path) -> set[str]:
    return {str(p.relative_to(snap)) for p in snap.rglob("*") if not p.is_dir()}


def test_snapshot_honours_amlignore_over_gitignore(tmp_path):
    code = _tree(
        tmp_path / "src",
        {
            "train.py": "",
            "data/big.csv": "",
            "ckpt/a.ckpt": "",
            "keep.ckpt": "",
            "sub/x.log": "",
            "sub/y.py": "",
            "sub/.amlignore": "y.py\n",
            ".gitignore": "train.py\n",
            ".amlignore": "# comment\ndata/\n*.ckpt\n!keep.ckpt\n/sub/*.log\n",
            ".git/HEAD": "",
            "__pycache__/t.pyc": "",
        },
    )
    snapshot.copy(code, tmp_path / "snap")
    assert _copied(tmp_path / "snap") == {"train.py", "keep.ckpt", ".amlignore", ".gitignore", "sub/.amlignore"}


def test_snapshot_uses_gitignore_without_amlignore(tmp_path):
    code = _tree(tmp_path / "src", {"train.py": "", "out/x": "", "deep/a/b.tmp": "", ".gitignore": "out/\n**/*.tmp\n"})
    snapshot.copy(code, tmp_path / "snap")
    assert _copied(tmp_path / "snap") == {"train.py", ".gitignore"}


def test_snapshot_skips_sockets_and_fifos_and_follows_links(tmp_path):
    code = _tree(tmp_path / "src", {"train.py": "print(1)"})
    os.mkfifo(code / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(code / "sock"))
    (code / "link.py").symlink_to("train.py")
    try:
        snapshot.copy(code, tmp_path / "snap")
    finally:
        sock.close()
    assert _copied(tmp_path / "snap") == {"train.py", "link.py"}
    assert not (tmp_path / "snap" / "link.py").is_symlink()
    assert (tmp_path / "snap" / "link.py").read_text() == "print(1)"


def test_snapshot_holds_what_relative_links_point_outside_the_folder(tmp_path):
    """A code folder whose files are links elsewhere (as the packaged contract suite's are) still
    runs from its snapshot: a relative link copied as a link would dangle there."""
    shared = _tree(tmp_path / "shared", {"train.py": "print('shared')", "lib/util.py": "X = 1"})
    code = tmp_path / "project" / "src"
    code.mkdir(parents=True)
    (code / "train.py").symlink_to(os.path.relpath(shared / "train.py", code))
    (code / "lib").symlink_to(os.path.relpath(shared / "lib", code))
    (code / "loop").symlink_to(".")  # a link back to a folder already walked is left out
    (code / "gone.py").symlink_to("missing.py")  # and so is a dangling one
    snapshot.copy(code, tmp_path / "snap")
    assert _copied(tmp_path / "snap") == {"train.py", "lib/util.py"}
    assert (tmp_path / "snap" / "train.py").read_text() == "print('shared')"
    assert not (tmp_path / "snap" / "lib").is_symlink()


def test_snapshot_leaves_out_links_into_amlemus_own_state(tmp_path, monkeypatch):
    home = tmp_path / "amlemu-home"
    monkeypatch.setenv("AMLEMU_HOME", str(home))
    _tree(home, {"frontdoor/ca.key": "secret"})
    code = _tree(tmp_path / "src", {"train.py": ""})
    (code / "key.pem").symlink_to(home / "frontdoor" / "ca.key")
    (code / "state").symlink_to(home)
    snapshot.copy(code, tmp_path / "snap")
    assert _copied(tmp_path / "snap") == {"train.py"}


def test_snapshot_limits_are_enforced_before_copying(tmp_path, monkeypatch):
    code = _tree(tmp_path / "src", {f"f{i}.py": "" for i in range(5)})
    monkeypatch.setenv("AMLEMU_SNAPSHOT_MAX_FILES", "4")
    with pytest.raises(ValidationError) as info:
        snapshot.copy(code, tmp_path / "snap")
    assert "4 files" in info.value.message and ".amlignore" in info.value.message
    assert "AMLEMU_SNAPSHOT_MAX_FILES" in info.value.message
    assert not (tmp_path / "snap").exists()
    monkeypatch.setenv("AMLEMU_SNAPSHOT_MAX_FILES", "10")
    monkeypatch.setenv("AMLEMU_SNAPSHOT_MAX_MB", "1")
    (code / "big.bin").write_bytes(b"\0" * (1024 * 1024 + 1))
    with pytest.raises(ValidationError, match="1 MB"):
        snapshot.copy(code, tmp_path / "snap")
    (code / ".amlignore").write_text("*.bin\n")
    snapshot.copy(code, tmp_path / "snap")  # excluded: within the limit again
    monkeypatch.setenv("AMLEMU_SNAPSHOT_MAX_MB", "lots")
    with pytest.raises(ValidationError, match="AMLEMU_SNAPSHOT_MAX_MB must be a positive whole number"):
        snapshot.limits()


def test_snapshot_defaults_are_azures():
    assert snapshot.limits() == (300 * 1024 * 1024, 2000)


@pytest.mark.parametrize("where", ["/", "home", "/proc", "/sys/kernel", "/dev"])
def test_snapshot_refuses_root_home_and_special_filesystems(tmp_path, where):
    code = Path.home() if where == "home" else Path(where)
    with pytest.raises(ValidationError, match="Point code: at your project"):
        snapshot.copy(code, tmp_path / "snap")
    assert not (tmp_path / "snap").exists()


def test_snapshot_skips_the_amlemu_home_inside_the_code_folder(tmp_path, monkeypatch):
    code = _tree(tmp_path / "src", {"train.py": "", "state/workspaces/default/store.db": ""})
    monkeypatch.setenv("AMLEMU_HOME", str(code / "state"))
    snapshot.copy(code, tmp_path / "snap")
    assert _copied(tmp_path / "snap") == {"train.py"}


# -- staging folders ------------------------------------------------------------------------------
def test_stale_staging_is_found_and_live_staging_is_kept(tmp_path):
    ws = tmp_path / "ws"
    live = staging.make(ws / "models" / "iris")
    dead_pid = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    dead = ws / "models" / "iris" / f".staging-{dead_pid}-abc"
    dead.mkdir()
    old_legacy = ws / "models" / "iris" / ".staging.k2j3"
    old_legacy.mkdir()
    os.utime(old_legacy, (time.time() - 7200, time.time() - 7200))
    new_legacy = ws / "models" / "iris" / ".staging.zz9"
    new_legacy.mkdir()
    old_job = ws / "jobs" / ".sincere_lemon_1.x8f"
    old_job.mkdir(parents=True)
    os.utime(old_job, (time.time() - 7200, time.time() - 7200))
    (ws / "jobs" / "real_job").mkdir()
    assert sorted(staging.stale(ws)) == sorted([dead, old_legacy, old_job])
    assert live.exists() and live.name.startswith(f".staging-{os.getpid()}-")
