"""The README's demo command runs end to end on the embedded default (no Docker, no Azure)."""

import os
import subprocess
import sys

from tests.conftest import ROOT


def test_demo_trains_registers_deploys_and_calls_the_endpoint(amlemu_home):
    env = {**os.environ, "AMLEMU_HOME": str(amlemu_home)}
    proc = subprocess.run(
        [sys.executable, "-m", "emulator.demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "Status: Completed" in out
    assert "registered model iris-demo:1" in out
    assert "[5.1, 3.5, 1.4, 0.2] -> 0 (setosa)" in out
    assert "[7.7, 3.0, 6.1, 2.3] -> 2 (virginica)" in out
    assert "scoring URI http://127.0.0.1:" in out and "answered by deployment 'blue'" in out
    assert '"accuracy"' in out and "demo complete" in out
    assert "nothing left running" in out
    assert not list((amlemu_home / "workspaces" / "default" / "endpoints").glob("*"))
