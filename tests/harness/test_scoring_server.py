"""ScoringServer: a scoring script's replica as a local process, started as a deployment's is, for unit tests of a
score.py without Docker. Also the bad input of both ScoringServer and ScoringContainer that needs no engine."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from amlemu.testing import ScoringServer
from emulator.errors import ValidationError
from emulator.testing.scoring import ScoringFailed, ScoringStartFailed
from tests.conftest import ROOT, SAMPLES, processes_mentioning

IRIS = SAMPLES / "iris"
SAMPLE = json.loads((IRIS / "sample-request.json").read_text())
CURATED = "AzureML-sklearn-1.5@latest"
FAILING_SCRIPT = """
def init():
    raise RuntimeError("the model file is corrupt")

def run(raw_data):
    return []
"""


@pytest.fixture
def scratch(tmp_path, monkeypatch) -> Path:
    """The temporary folder ScoringServer's throwaway workspaces go to: empty again when nothing is left."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def replicas_under(folder: Path) -> list[int]:
    """Live scoring-server processes working in ``folder`` (a replica's cwd is its code snapshot)."""
    found = []
    for pid in processes_mentioning("serving") + processes_mentioning("azmlinfsrv"):
        try:
            if os.readlink(f"/proc/{pid}/cwd").startswith(str(folder)):
                found.append(pid)
        except OSError:
            continue
    return found


def refused_without_secret(url: str) -> int:
    """The status a call without the gateway's header gets."""
    request = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_iris_score_py_answers_the_sample(iris_model, scratch):
    with ScoringServer(model=iris_model, code=IRIS / "score", scoring_script="score.py", environment=CURATED) as server:
        assert server.score(SAMPLE) == [0, 1, 2]
        assert server.get_scoring_url().startswith("http://127.0.0.1:")
        status, _, _ = server.request("GET", "/")  # liveness, as the endpoint probes it
        assert status == 200
        assert refused_without_secret(server.get_scoring_url()) == 403  # the replica answers only its gateway
        with pytest.raises(ScoringFailed) as info:
            server.score({"data": [[1.0, 2.0]]})  # two features: run() raises
        assert info.value.status >= 400
        assert "Last lines of the replica's log" in str(info.value)
        assert "POST /score" in server.get_logs()


def test_the_built_in_onnx_scorer_serves_a_model_without_code(iris_model, scratch):
    with ScoringServer(model=iris_model / "model.onnx") as server:
        assert server.score(SAMPLE) == [0, 1, 2]
        status, _, body = server.request("GET", "/swagger.json")
        assert status == 200 and json.loads(body)["swagger"]


def test_the_context_manager_stops_the_replica_and_removes_its_workspace(iris_model, scratch):
    with ScoringServer(model=iris_model, code=IRIS / "score", scoring_script="score.py", environment=CURATED) as s:
        pid = s.pid
        assert replicas_under(scratch)
        assert list(scratch.iterdir())
    assert not Path(f"/proc/{pid}").exists()
    assert replicas_under(scratch) == []
    assert list(scratch.iterdir()) == []


def test_an_init_that_raises_names_the_cause_and_leaves_nothing_running(iris_model, scratch, tmp_path):
    code = tmp_path / "src"
    code.mkdir()
    (code / "score.py").write_text(FAILING_SCRIPT)
    server = ScoringServer(model=iris_model, code=code, scoring_script="score.py", environment=CURATED)
    with pytest.raises(ScoringStartFailed) as info:
        server.start()
    message = str(info.value)
    assert "did not start" in message
    assert "The cause: RuntimeError: the model file is corrupt" in message
    assert "Fix the scoring script" in message
    assert "Last lines of the replica's log" in message
    assert replicas_under(scratch) == []
    assert list(scratch.iterdir()) == []
    with pytest.raises(ScoringStartFailed, match="not started"):
        server.score(SAMPLE)


@pytest.mark.parametrize(
    "arguments, expected",
    [
        ({"model": "no-such-model"}, "Model path 'no-such-model' does not exist"),
        ({"scoring_script": "missing.py"}, "Scoring script 'missing.py' not found"),
        ({"environment": "broken.yml"}, "is not valid YAML"),
        ({"environment": "missing.yml"}, "conda_file 'missing.yml' not found"),
        ({"environment": None}, "needs an 'environment'"),
    ],
)
def test_bad_input_is_one_clear_error_and_leaves_nothing(iris_model, scratch, tmp_path, arguments, expected):
    (tmp_path / "broken.yml").write_text("dependencies:\n  - pip:\n    - numpy\n  bad: [\n")
    given = {
        "model": iris_model,
        "code": IRIS / "score",
        "scoring_script": "score.py",
        "environment": CURATED,
        **arguments,
    }
    with pytest.raises(ValidationError, match=re.escape(expected)):
        ScoringServer(**given, base_path=tmp_path).start()
    assert list(scratch.iterdir()) == []


def test_scoring_container_without_an_engine_says_what_to_do(iris_model, tmp_path):
    """No Docker engine answers: the error names the cause and both fixes (start one, or use ScoringServer)."""
    program = f"from amlemu.testing import ScoringContainer\nScoringContainer(model={str(iris_model)!r})\n"
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock", "AMLEMU_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "DockerUnavailable" in last and "ScoringContainer needs a Docker engine" in last
    assert "Start one" in last and "ScoringServer" in last
