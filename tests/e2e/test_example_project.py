"""examples/ci-project's own suite, run as its users run it: a fresh virtualenv, amlemu installed into it as
``pip install amlemu`` installs it (a wheel built from this repository), then ``pytest -n 2`` in the project.

The install is uv's (``uv venv`` and ``uv pip install``, offline from the machine's uv cache first, the index only
for what the cache lacks): about 4 s, where pip takes over a minute for the same 130 packages. The virtualenv is
made anew at one path of the machine cache on every run: the project's environments (the conda file's, with and
without the scoring packages) are cached per interpreter path, so the same path finds them built.

Docker: the project's container test runs (REQUIRE_DOCKER=1 makes the project fail it, not skip it, without an
engine), so this test carries the docker marker and sits in the one Docker group of the suite.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
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


def install_amlemu(venv: Path, source: Path) -> None:
    """A new virtualenv at ``venv`` with amlemu (built from ``source``) and the project's test tools."""
    shutil.rmtree(venv, ignore_errors=True)
    uv, env = find_uv_bin(), installs.installer_env()
    made = _run([uv, "venv", "--no-config", "--python", sys.executable, str(venv)], env=env)
    assert made.returncode == 0, f"uv venv failed:\n{made.stderr}"
    command = [uv, "pip", "install", "--no-config", "--python", str(venv / "bin" / "python"), str(source)]
    installed = _run([*command, *USER_PACKAGES, "--offline"], env=env)
    if installed.returncode != 0:  # something is not in uv's cache yet: the index has it
        installed = _run([*command, *USER_PACKAGES], env=env)
    assert installed.returncode == 0, f"installing amlemu into {venv} failed:\n{_tail(installed.stderr)}"


def user_environment(venv: Path) -> dict[str, str]:
    """A shell of the project's CI: the virtualenv first on PATH, nothing of this test run's own settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AMLEMU_HOME", "AMLEMU_BACKEND", "AMLEMU_WORKSPACE", "PYTEST_", "VIRTUAL_ENV"))
        # PYTHONDONTWRITEBYTECODE (set on these machines, rarely in a user's CI) would have every process of the
        # project compile azure-ai-ml, MLflow and scikit-learn again: the first one writes their bytecode instead
        and key not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["REQUIRE_DOCKER"] = "1"
    return env


def test_the_example_project_passes_its_own_suite_in_a_fresh_virtualenv(tmp_path):
    source = copy_distribution(tmp_path / "amlemu")
    user_project = tmp_path / "ci-project"
    shutil.copytree(PROJECT, user_project, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    basetemp = tmp_path / "basetemp"

    cache = config.machine_cache()
    cache.mkdir(parents=True, exist_ok=True)
    venv = cache / "ci-project-venv"
    with open(cache / "ci-project-venv.lock", "w") as lock:  # one such run at a time on this machine
        fcntl.flock(lock, fcntl.LOCK_EX)
        install_amlemu(venv, source)
        run = _run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pytest",
                "-n",
                "2",
                "-p",
                "no:cacheprovider",
                "--basetemp",
                str(basetemp),
            ],  # fmt: skip
            cwd=user_project,
            env=user_environment(venv),
        )
    output = run.stdout + run.stderr
    summary = output.rstrip().splitlines()[-1] if output.strip() else ""
    assert run.returncode == 0 and "4 passed" in summary and "skipped" not in summary, (
        f"the example project's suite did not pass (pytest exit {run.returncode}):\n{_tail(output)}"
    )
    project.nothing_runs_under(basetemp)
