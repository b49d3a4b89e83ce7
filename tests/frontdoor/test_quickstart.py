"""Azure ML's quickstart, written as its documentation writes it, runs unmodified through the front door."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import SAMPLES

pytestmark = pytest.mark.slow


def test_quickstart_runs_unmodified(front_door):
    # only what `amlemu env` prints, and what any shell has: no AMLEMU_* variable reaches the script
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMLEMU_", "MLFLOW_", "AZURE", "AZUREML"))}
    env.update(front_door.variables)
    proc = subprocess.run(
        [sys.executable, "quickstart.py"],
        cwd=SAMPLES / "iris",
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, (
        f"quickstart failed (exit {proc.returncode}):\n{out[-5000:]}\n--- server log ---\n{front_door.log()[-3000:]}"
    )
    assert "connected to quickstart-ws" in out
    assert "prediction: [0, 1, 2]" in out
    assert "quickstart complete" in out
