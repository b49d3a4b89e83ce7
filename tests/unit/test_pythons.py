"""Finding a Python of the version an environment asks for: real interpreters, each probed by running it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.errors import ValidationError
from emulator.runtime import pythons


def _other_python() -> tuple[str, Path]:
    """A pyenv-installed Python of a minor version other than the host's (this machine keeps several)."""
    versions = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    for folder in sorted(versions.glob("3.*"), reverse=True):
        match = re.fullmatch(r"(3\.\d+)\.\d+", folder.name)
        if match and match[1] != pythons.host_version() and (folder / "bin" / f"python{match[1]}").is_file():
            return match[1], folder / "bin" / f"python{match[1]}"
    pytest.skip("no pyenv Python of another minor version on this machine")


def _runs_as(path: Path) -> str:
    out = subprocess.run([str(path), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True)
    return out.stdout.decode().strip()


@pytest.fixture(autouse=True)
def _no_config_file(tmp_path, monkeypatch):
    """No .amlemu.yml of the developer's, and AMLEMU_PYTHONS unset unless a test sets it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AMLEMU_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AMLEMU_PYTHONS", raising=False)


def test_host_version_is_the_running_minor():
    assert pythons.host_version() == f"{sys.version_info.major}.{sys.version_info.minor}"


def test_host_version_answers_with_the_running_interpreter():
    assert pythons.find_interpreter(pythons.host_version()) == Path(sys.executable)
    assert pythons.find_interpreter(f"{pythons.host_version()}.99") == Path(sys.executable)


def test_another_minor_is_found_and_runs_as_that_version():
    minor, _ = _other_python()
    found = pythons.find_interpreter(f"{minor}.0")  # a micro part is accepted, only the minor compared
    assert found is not None
    assert _runs_as(found) == minor


def test_a_candidate_that_does_not_run_is_passed_over(tmp_path, monkeypatch):
    """Like a pyenv shim for a version pyenv has not selected: it exists on the search path and fails."""
    minor, real = _other_python()
    broken, working = tmp_path / "broken", tmp_path / "working"
    broken.mkdir()
    working.mkdir()
    shim = broken / f"python{minor}"
    shim.write_text(f"#!/bin/sh\necho 'pyenv: python{minor}: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    (working / f"python{minor}").symlink_to(real)
    monkeypatch.setenv("AMLEMU_PYTHONS", os.pathsep.join([str(broken), str(working)]))
    assert pythons.find_interpreter(minor) == working / f"python{minor}"


def test_amlemu_pythons_folders_come_first(tmp_path, monkeypatch):
    minor, real = _other_python()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / f"python{minor}").symlink_to(real)
    monkeypatch.setenv("AMLEMU_PYTHONS", str(tmp_path))  # <folder>/bin/python3.X counts too
    assert pythons.find_interpreter(minor) == tmp_path / "bin" / f"python{minor}"


def test_host_only_hides_every_other_python(monkeypatch):
    minor, _ = _other_python()
    monkeypatch.setenv("AMLEMU_PYTHONS", "host")
    assert pythons.find_interpreter(minor) is None
    assert pythons.find_interpreter(pythons.host_version()) == Path(sys.executable)


def test_host_only_from_the_config_file(tmp_path):
    minor, _ = _other_python()
    (tmp_path / ".amlemu.yml").write_text("pythons: host\n")
    assert pythons.find_interpreter(minor) is None


def test_a_version_nobody_has_is_none():
    assert pythons.find_interpreter("3.99") is None


def test_the_answer_is_kept_for_the_process(tmp_path, monkeypatch):
    minor, real = _other_python()
    (tmp_path / f"python{minor}").symlink_to(real)
    monkeypatch.setenv("AMLEMU_PYTHONS", str(tmp_path))
    first = pythons.find_interpreter(minor)
    (tmp_path / f"python{minor}").unlink()  # a second search would find another one
    runs = []
    real_run = pythons.subprocess.run
    monkeypatch.setattr(pythons.subprocess, "run", lambda *a, **k: runs.append(a) or real_run(*a, **k))  # counts
    assert pythons.find_interpreter(minor) == first
    assert runs == []  # no probe ran: counted, not timed


@pytest.mark.parametrize("bad", ["three", "3", "", ">=3.8"])
def test_a_version_without_a_minor_is_refused(bad):
    with pytest.raises(ValidationError, match="major.minor"):
        pythons.find_interpreter(bad)
