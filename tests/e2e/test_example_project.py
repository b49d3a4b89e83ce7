"""examples/ci-project's own suite, run as its users run it: amlemu installed as ``pip install amlemu`` installs it (a
wheel built from this repository, with its dependencies as the index resolves them), then ``pytest -n 2`` in a copy
of the project folder.

The install is uv's, from the machine's uv cache (offline first; the index only for what the cache lacks): the wheel
is built, the requirements resolved (``uv pip compile``), and the virtualenv made to hold exactly them (``uv pip
sync``: what a fresh install would hold, amlemu reinstalled from the new wheel, anything else removed). The
virtualenv stays at one path of the machine cache between runs, because a new one costs what the test is not about:
deleting the old one (~40,000 files), compiling the bytecode of azure-ai-ml, MLflow and scikit-learn again in each
process, and building the project's conda environment again (amlemu caches it per interpreter path). pip does the
same install in over three minutes here, and pip 23 does not resolve amlemu's dependencies at all.

Docker: the project's container test runs (REQUIRE_DOCKER=1 makes the project fail it, not skip it, without an
engine), so this test carries the docker marker and sits in the one Docker group of the suite.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from uv import find_uv_bin

from emulator import config
from emulator.runtime import installs
from tests.conftest import ROOT
from tests.harness import project

pytestmark = pytest.mark.docker

PROJECT = ROOT / "examples" / "ci-project"
#: what a wheel of amlemu is built from (pyproject.toml's packages, and the README it names)
DISTRIBUTION = ("pyproject.toml", "README.md", "amlemu", "backends", "emulator")
USER_PACKAGES = ("pytest", "pytest-xdist", "testcontainers")  # as the project's CI installs them beside amlemu
RUN_TIMEOUT = 900  # a hang guard for the install and the project's run, not a timing assertion
TAIL_LINES = 80


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT, **kwargs)


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def copy_distribution(target: Path) -> Path:
    """The files a wheel of amlemu is built from, copied to ``target`` (a build writes into its source folder)."""
    target.mkdir(parents=True)
    for name in DISTRIBUTION:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(ROOT / name, target / name)
    return target


def _uv(*args: str, what: str, offline_first: bool = True) -> None:
    """One uv command with the machine's uv cache: offline first, then with the index for what the cache lacks."""
    uv, env = find_uv_bin(), installs.installer_env()
    for offline in (["--offline"], []) if offline_first else ([],):
        done = _run([uv, *args, "--no-config", *offline], env=env)
        if done.returncode == 0:
            return
    raise AssertionError(f"{what} failed (uv {' '.join(args)}):\n{_tail(done.stderr)}")


def install_amlemu(venv: Path, source: Path, work: Path) -> None:
    """``venv`` holding exactly amlemu (built from ``source``), its dependencies and the project's test tools."""
    _uv("build", "--wheel", "--out-dir", str(work / "dist"), str(source), what="building amlemu's wheel")
    (wheel,) = (work / "dist").glob("amlemu-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        bytecode = [name for name in archive.namelist() if "__pycache__" in name or name.endswith(".pyc")]
    assert not bytecode, f"amlemu's wheel carries bytecode of the tree it was built from: {bytecode}"
    python = str(venv / "bin" / "python")
    if not Path(python).exists():
        _uv("venv", "--python", sys.executable, str(venv), what="creating the virtualenv", offline_first=False)
    wanted, locked = work / "requirements.in", work / "requirements.txt"
    wanted.write_text("\n".join([str(wheel), *USER_PACKAGES]) + "\n")
    _uv("pip", "compile", "--python", python, "--quiet", "-o", str(locked), str(wanted), what="resolving")
    _uv("pip", "sync", "--python", python, "--reinstall-package", "amlemu", str(locked), what="installing")


def user_environment(venv: Path) -> dict[str, str]:
    """A shell of the project's CI: the virtualenv first on PATH, nothing of this test run's own settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AMLEMU_HOME", "AMLEMU_BACKEND", "AMLEMU_WORKSPACE", "PYTEST_", "VIRTUAL_ENV"))
        # PYTHONDONTWRITEBYTECODE (set on these machines, rarely in a user's CI) would have every process of the
        # project compile azure-ai-ml, MLflow and scikit-learn again: the bytecode is written once and kept
        and key not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["REQUIRE_DOCKER"] = "1"
    return env


def test_the_example_project_passes_its_own_suite_with_amlemu_installed_as_a_user_installs_it(tmp_path):
    source = copy_distribution(tmp_path / "amlemu")
    # a working tree's bytecode beside the packaged contract suite's scripts (package data, globbed): not shipped
    left = source / "emulator" / "testing" / "contract" / "data" / "iris" / "score" / "__pycache__"
    left.mkdir(exist_ok=True)
    (left / "score.cpython-311.pyc").write_bytes(b"\x00" * 16)
    user_project = tmp_path / "ci-project"
    shutil.copytree(PROJECT, user_project, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    basetemp = tmp_path / "basetemp"

    cache = config.machine_cache()
    cache.mkdir(parents=True, exist_ok=True)
    venv = cache / "ci-project-venv"
    with open(cache / "ci-project-venv.lock", "w") as lock:  # one such run at a time on this machine
        fcntl.flock(lock, fcntl.LOCK_EX)
        install_amlemu(venv, source, tmp_path)
        python = str(venv / "bin" / "python")
        run = _run(
            [python, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "--basetemp", str(basetemp)],
            cwd=user_project,
            env=user_environment(venv),
        )
    output = run.stdout + run.stderr
    summary = output.rstrip().splitlines()[-1] if output.strip() else ""
    assert run.returncode == 0 and "4 passed" in summary and "skipped" not in summary, (
        f"the example project's suite did not pass (pytest exit {run.returncode}):\n{_tail(output)}"
    )
    project.nothing_runs_under(basetemp)
