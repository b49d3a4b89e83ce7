"""The packaged contract suite stays whole (every file of it runs here, its iris files are the samples'), and
``amlemu contract`` runs it as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from emulator.testing.contract import IRIS
from tests.conftest import SAMPLES

PACKAGED = IRIS.parent.parent
HERE = Path(__file__).parent


def test_every_packaged_file_is_collected_here():
    packaged = {p.name for p in PACKAGED.glob("test_*.py")}
    assert len(packaged) >= 7
    missing = sorted(packaged - {p.name for p in HERE.glob("test_*.py")})
    assert not missing, f"add tests/contract/<file> importing * from emulator.testing.contract.<file> for {missing}"


def test_the_packaged_iris_files_are_the_samples():
    files = sorted(p.relative_to(IRIS) for p in IRIS.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert [str(f) for f in files] == [
        "data/iris.csv",
        "job.yml",
        "sample-request.json",
        "score/score.py",
        "src/train.py",
    ]
    for relative in files:
        assert (IRIS / relative).read_bytes() == (SAMPLES / "iris" / relative).read_bytes(), (
            f"{relative} differs from sample_models/iris: copy it again into {IRIS}"
        )


def amlemu_contract(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``amlemu contract ...`` as a user runs it, from ``cwd``."""
    environ = {k: v for k, v in os.environ.items() if k not in ("AMLEMU_BACKEND", "AMLEMU_HOME", "AMLEMU_WORKSPACE")}
    return subprocess.run(
        [sys.executable, "-m", "emulator.cli.main", "contract", *args],
        cwd=cwd,
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def table(run: subprocess.CompletedProcess) -> dict[str, list[str]]:
    """The outcome table ``amlemu contract`` prints after pytest's report: test -> outcome per backend."""
    lines = run.stdout[run.stdout.index("amlemu contract: each test's outcome") :].splitlines()[1:]
    rows = [line.split() for line in lines[: lines.index("")]]
    return {row[0]: row[1:] for row in rows}


def test_amlemu_contract_runs_the_suite_apart_from_the_project_it_is_run_in(tmp_path):
    (tmp_path / "conftest.py").write_text('raise RuntimeError("the project conftest.py must not load")\n')
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --not-an-option-of-pytest\n")
    run = amlemu_contract("--backend", "local", "-k", "unknown", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert table(run) == {
        "test": ["local"],
        "test_compute.py::test_unknown_compute_is_not_found": ["passed"],
        "test_models.py::test_unknown_model_is_not_found": ["passed"],
    }
    assert "No differences: every test that ran passed on local." in run.stdout


def test_amlemu_contract_names_where_the_backend_differs(tmp_path):
    """A difference injected by a pytest plugin of the user's (``-p``): the table and the list name it."""
    (tmp_path / "inject_difference.py").write_text(
        "def pytest_runtest_call(item):\n"
        "    if 'unknown_model' in item.nodeid:\n"
        "        raise AssertionError('injected: this backend answers otherwise')\n"
    )
    plugin = {"PYTHONPATH": str(tmp_path)}
    run = amlemu_contract("--backend", "local", "-k", "unknown", "-p", "inject_difference", cwd=tmp_path, env=plugin)
    assert run.returncode == 1, run.stdout + run.stderr
    assert table(run)["test_models.py::test_unknown_model_is_not_found"] == ["failed"]
    assert table(run)["test_compute.py::test_unknown_compute_is_not_found"] == ["passed"]
    assert (
        "Where the backend differs from the contract (1):\n  [local] test_models.py::test_unknown_model_is_not_found: "
        "AssertionError: injected: this backend answers otherwise\n"
    ) in run.stdout


def test_amlemu_contract_refuses_an_unknown_backend_or_a_missing_config(tmp_path):
    run = amlemu_contract("--backend", "nope", cwd=tmp_path)
    assert run.returncode == 2 and "--backend nope: unknown backend. Known: azure, front-door, local." in run.stderr
    run = amlemu_contract("--backend", "azure", "--workspace-config", "missing.json", cwd=tmp_path)
    assert run.returncode == 2 and "--workspace-config missing.json: no such file" in run.stderr
