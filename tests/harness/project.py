"""A user's project for the plugin's tests: the iris job, a trained model, a broken scorer, and pytest run on it.

The plugin's tests write test files into a ``pytester`` folder holding this project and run pytest there in a
subprocess (``run``), with its own ``--basetemp``, so that they can look at the run's state folder afterwards
(``nothing_runs_under``). Inner tests record what they created with ``harness_record.record(...)``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from emulator import config
from emulator.runtime.proctree import kill_tree
from emulator.testing import leaks

IRIS = Path(__file__).resolve().parents[2] / "sample_models" / "iris"
SUBPROCESS_TIMEOUT = 600  # a hang guard for one inner pytest run, not a timing assertion
#: the machine's environment cache, read before pytester points HOME at its own folder: inner runs share it, as a
#: user's runs do (a cold cache would rebuild the curated environment's virtualenv in every inner run)
MACHINE_CACHE = config.machine_cache()

#: what the inner tests share: where to record what they created, for the checks after the run
RECORD = """
import json, os
from pathlib import Path

def record(test, **values):
    path = Path(os.environ["HARNESS_RECORD"])
    data = json.loads(path.read_text()) if path.exists() else {}
    data[test] = values
    path.write_text(json.dumps(data))
"""


def make(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, iris_model: Path) -> Path:
    """The user's repository: the iris job (job.yml, src/, data/), a trained ONNX model (model/), a scorer whose
    init() raises (bad_score/); returns the record file the inner tests write."""
    for part in ("job.yml", "src", "data"):
        source = IRIS / part
        (shutil.copytree if source.is_dir() else shutil.copy)(source, pytester.path / part)
    shutil.copytree(iris_model, pytester.path / "model")
    (pytester.path / "bad_score").mkdir()
    (pytester.path / "bad_score" / "score.py").write_text(
        "def init():\n    raise RuntimeError('init-exploded-on-purpose')\n\ndef run(raw_data):\n    return raw_data\n"
    )
    pytester.makepyfile(harness_record=RECORD)
    record = pytester.path / "record.json"
    monkeypatch.setenv("HARNESS_RECORD", str(record))
    monkeypatch.setenv("AMLEMU_MACHINE_CACHE", str(MACHINE_CACHE))
    for name in ("AMLEMU_BACKEND", "AMLEMU_HOME", "AMLEMU_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)
    return record


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, Path]:
    """pytest in a subprocess on the project; the result and the run's --basetemp (its state folders are below)."""
    basetemp = pytester.path / "basetemp"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "ignore", "--basetemp", str(basetemp), *args, timeout=SUBPROCESS_TIMEOUT
    )
    return result, basetemp


def nothing_runs_under(folder: Path) -> None:
    """Fail, naming them, if processes still run under ``folder`` (and stop them, so one failure does not leak)."""
    left = leaks.processes_under(folder)
    for process in left:
        kill_tree(process.pid)
    assert not left, f"still running under {folder}:\n" + "\n".join(map(str, left))
