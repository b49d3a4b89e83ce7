"""ScoringContainer: a scoring script's replica in a testcontainers container, from the same offline image recipe as
docker deployments; published on 127.0.0.1 only, refusing calls without the gateway's header, removed at the end."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import docker
import pytest

from amlemu.testing import ScoringContainer
from emulator.errors import ValidationError
from emulator.testing.scoring import ScoringStartFailed
from tests.conftest import SAMPLES

pytestmark = pytest.mark.docker

IRIS = SAMPLES / "iris"
SAMPLE = json.loads((IRIS / "sample-request.json").read_text())
CONDA = """\
name: iris-scoring
channels: [conda-forge]
dependencies:
  - python=3.11
  - pip
  - pip:
    - numpy
    - onnxruntime
"""
FAILING_SCRIPT = """
def init():
    raise RuntimeError("the model file is corrupt")

def run(raw_data):
    return []
"""


@pytest.fixture
def engine():
    client = docker.from_env()
    client.ping()  # fails (never skips) without an engine
    return client


def leftovers(engine, scoring_id: str) -> list:
    """Containers (running or not) of one ScoringContainer's start, found by its label."""
    return engine.containers.list(
        all=True, ignore_removed=True, filters={"label": f"com.amlemu.scoring-container={scoring_id}"}
    )


def without_secret(url: str) -> int:
    request = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_iris_score_py_with_a_conda_file_answers_in_its_container(engine, iris_model, tmp_path):
    (tmp_path / "conda.yml").write_text(CONDA)
    container = ScoringContainer(
        model=iris_model, code=IRIS / "score", scoring_script="score.py", environment=tmp_path / "conda.yml"
    )
    with container:
        assert container.score(SAMPLE) == [0, 1, 2]
        assert container.request("GET", "/")[0] == 200
        assert without_secret(container.get_scoring_url()) == 403
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        bindings = wrapped.attrs["HostConfig"]["PortBindings"]
        assert {b["HostIp"] for binding in bindings.values() for b in binding} == {"127.0.0.1"}
        assert wrapped.attrs["Config"]["User"] != "root" and wrapped.attrs["HostConfig"]["CapDrop"] == ["ALL"]
        assert wrapped.labels["com.amlemu.kind"] == "deployment"
        stdout, stderr = container.get_logs()
        assert b"POST /score" in stdout + stderr or b"/score" in stdout + stderr
        scoring_id = container.scoring_id
        assert leftovers(engine, scoring_id)
    assert leftovers(engine, scoring_id) == []


def test_an_init_that_raises_fails_with_the_container_log_and_leaves_nothing(engine, iris_model, tmp_path):
    code = tmp_path / "src"
    code.mkdir()
    (code / "score.py").write_text(FAILING_SCRIPT)
    container = ScoringContainer(
        model=iris_model, code=code, scoring_script="score.py", environment="AzureML-sklearn-1.5@latest"
    )
    with pytest.raises(ScoringStartFailed) as info:
        with container:
            pytest.fail("the container started")
    message = str(info.value)
    assert "ScoringContainer did not start: its container exited" in message
    assert "The cause: RuntimeError: the model file is corrupt" in message
    assert "Last lines of the replica's log" in message and "Traceback" in message
    assert leftovers(engine, container.scoring_id) == []


def test_bad_input_fails_before_any_container(engine, iris_model, tmp_path):
    container = ScoringContainer(model=tmp_path / "nothing-here", environment=None)
    with pytest.raises(ValidationError, match="does not exist"):
        container.start()
    assert container.scoring_id is None  # failed before its workspace, let alone a container
