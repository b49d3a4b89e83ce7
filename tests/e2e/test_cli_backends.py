"""Every ``amlemu`` verb goes through the backend seam: ``AMLEMU_BACKEND=azure`` never runs locally.

Azure cannot be reached here, so two things are shown: with no Azure configuration the CLI stops with
amlemu's own message and records nothing locally; and with the Azure backend built over a fake
``MLClient`` (its operation groups record their calls and return azure-ai-ml's real entities) each
verb reaches the client the way ``az ml`` does and prints the entity's ``_to_dict()``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from azure.ai.ml.entities import AmlCompute, Command, CommandJob, EndpointAuthKeys, ManagedOnlineEndpoint, Model
from azure.core.exceptions import ResourceNotFoundError

from backends import registry
from backends.azure import AzureBackend
from emulator.cli.main import main

SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"


def run_amlemu(cwd: Path, home: Path, *args: str, backend: str | None = "azure") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMLEMU_", "AZURE_"))}
    env["AMLEMU_HOME"] = str(home)
    if backend:
        env["AMLEMU_BACKEND"] = backend
    return subprocess.run(
        [sys.executable, "-m", "emulator.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- no Azure configuration: amlemu's own message, nothing run locally ------------------------------------------------
@pytest.fixture
def empty_folder(tmp_path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    assert not any((parent / "config.json").exists() for parent in [folder, *folder.parents])
    return folder


@pytest.mark.parametrize(
    "verb",
    [
        ("job", "create", "--file", str(SAMPLES / "hello" / "job.yml"), "--stream"),
        ("model", "create", "--name", "m", "--path", str(SAMPLES / "iris" / "data")),
        ("online-endpoint", "invoke", "--name", "ep", "--request-file", str(SAMPLES / "iris" / "sample-request.json")),
    ],
    ids=["job-create", "model-create", "online-endpoint-invoke"],
)
def test_azure_backend_without_configuration_runs_nothing_locally(empty_folder, tmp_path, verb):
    home = tmp_path / "amlemu-home"
    proc = run_amlemu(empty_folder, home, *verb)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    error = proc.stderr.strip()
    assert error.startswith("ERROR: (AzureNotConfigured)") and "\n" not in error
    for needed in ("config.json", "az login", "AZURE_CLIENT_ID", "-w/--workspace-name", "unset AMLEMU_BACKEND"):
        assert needed in error, needed
    assert not (home / "workspaces").exists()  # no local workspace was even opened
    listed = run_amlemu(empty_folder, home, "job", "list", backend=None)
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


# -- the Azure backend over a fake MLClient ---------------------------------------------------------------------------
class Recorder:
    """An operation group: each method records its call and answers from ``answers``."""

    def __init__(self, group: str, calls: list, answers: dict):
        self._group, self._calls, self._answers = group, calls, answers

    def __getattr__(self, method: str):
        if method.startswith("__"):
            raise AttributeError(method)

        def call(*args, **kwargs):
            self._calls.append((f"{self._group}.{method}", args, kwargs))
            answer = self._answers.get(f"{self._group}.{method}")
            if isinstance(answer, BaseException):
                raise answer
            return answer(*args, **kwargs) if callable(answer) else answer

        return call


class FakeMLClient:
    """The operation groups of ``MLClient`` the tests use; no request leaves the process."""

    def __init__(self, answers: dict):
        self.calls: list = []
        for group in ("jobs", "models", "environments", "compute", "online_endpoints", "online_deployments"):
            setattr(self, group, Recorder(group, self.calls, answers))


@pytest.fixture
def fake_azure(amlemu_home, tmp_path, monkeypatch):
    """``AMLEMU_BACKEND=azure`` builds ``AzureBackend(client=<fake>)``; returns the fake and the kwargs it got."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AMLEMU_BACKEND", "azure")
    monkeypatch.delenv("AMLEMU_WORKSPACE", raising=False)
    fake = FakeMLClient(
        {
            "jobs.create_or_update": lambda job, **kwargs: job,
            "jobs.get": lambda name: CommandJob(
                name=name, command="echo hi", environment="azureml:env:1", status="Completed"
            ),
            "models.create_or_update": lambda model: model,
            "online_endpoints.get_keys": EndpointAuthKeys(primary_key="pk", secondary_key="sk"),
            "compute.list": [AmlCompute(name="cpu-cluster", size="Standard_DS3_v2", max_instances=2)],
        }
    )
    built: list[dict] = []

    def build(**kwargs):
        built.append(kwargs)
        return AzureBackend(client=fake)

    monkeypatch.setattr(sys.modules[__name__], "build_fake_azure", build, raising=False)
    monkeypatch.setattr(registry, "BUILTIN", {**registry.BUILTIN, "azure": f"{__name__}:build_fake_azure"})
    yield fake, built
    assert not amlemu_home.exists(), "the Azure backend touched the local store"


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_job_create_loads_the_yaml_with_azure_ai_ml_and_submits_it(fake_azure, capsys, tmp_path):
    fake, _ = fake_azure
    spec = tmp_path / "job.yml"
    spec.write_text("command: echo ${{inputs.C}}\ninputs:\n  C: 0.5\nenvironment: azureml:AzureML-sklearn-1.5@latest\n")
    code, out, err = run_main(capsys, "job", "create", "--file", str(spec), "--set", "inputs.C=0.8", "--name", "n1")
    assert code == 0, err
    [(method, (job,), kwargs)] = fake.calls
    assert method == "jobs.create_or_update"
    assert isinstance(job, Command) and job.name == "n1"
    assert job._to_dict()["inputs"]["C"] == 0.8
    # printed as az ml prints a job: the job the node stands for, not the node's own shape
    assert json.loads(out) == json.loads(json.dumps(job._to_job()._to_dict(), default=str))
    assert json.loads(out)["name"] == "n1" and "component" not in json.loads(out)


def test_job_create_stream_follows_the_job_on_azure(fake_azure, capsys):
    fake, _ = fake_azure
    code, out, err = run_main(capsys, "job", "create", "--file", str(SAMPLES / "hello" / "job.yml"), "--stream")
    assert code == 0, err
    assert [c[0] for c in fake.calls] == ["jobs.create_or_update", "jobs.stream", "jobs.get"]
    submitted = fake.calls[0][1][0]
    assert fake.calls[1][1] == fake.calls[2][1] == (submitted.name,)
    assert json.loads(out)["status"] == "Completed"  # the job as it ended, from jobs.get


def test_job_show_and_a_service_error_in_one_line(fake_azure, capsys, monkeypatch):
    fake, _ = fake_azure
    code, out, _ = run_main(capsys, "job", "show", "--name", "my-job")
    assert code == 0 and json.loads(out)["name"] == "my-job"
    assert fake.calls[-1][:2] == ("jobs.get", ("my-job",))
    monkeypatch.setitem(fake.jobs._answers, "jobs.get", ResourceNotFoundError("Job my-job not found\non Azure"))
    code, out, err = run_main(capsys, "job", "show", "--name", "my-job")
    assert (code, out) == (1, "")
    assert err == "ERROR: (ResourceNotFoundError) Job my-job not found on Azure\n"


def test_model_create_from_flags(fake_azure, capsys, tmp_path):
    fake, _ = fake_azure
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"onnx")
    code, out, err = run_main(capsys, "model", "create", "--name", "m", "--path", str(folder))
    assert code == 0, err
    [(method, (model,), _)] = fake.calls
    assert method == "models.create_or_update"
    assert isinstance(model, Model) and model.name == "m" and Path(model.path) == folder
    assert json.loads(out) == json.loads(json.dumps(model._to_dict(), default=str))


def test_endpoint_credentials_and_compute_list(fake_azure, capsys):
    fake, _ = fake_azure
    code, out, _ = run_main(capsys, "online-endpoint", "get-credentials", "--name", "ep")
    assert code == 0 and json.loads(out) == {"primaryKey": "pk", "secondaryKey": "sk"}
    code, out, _ = run_main(capsys, "compute", "list")
    assert code == 0 and [c["name"] for c in json.loads(out)] == ["cpu-cluster"]
    assert [c[0] for c in fake.calls] == ["online_endpoints.get_keys", "compute.list"]


def test_workspace_flags_reach_the_backend(fake_azure, capsys, monkeypatch):
    _, built = fake_azure
    monkeypatch.setenv("AMLEMU_WORKSPACE", "unchanged")  # main() sets it from -w; monkeypatch restores it
    run_main(capsys, "compute", "list", "-w", "ws", "-g", "rg", "--subscription", "sub")
    assert built[-1] == {"workspace_name": "ws", "resource_group_name": "rg", "subscription_id": "sub"}


@pytest.mark.parametrize("verb", [("system", "prune"), ("system", "status"), ("environment", "build", "--name", "e")])
def test_machine_only_verbs_are_refused_naming_the_backend(fake_azure, capsys, verb):
    fake, _ = fake_azure
    code, out, err = run_main(capsys, *verb)
    assert (code, out) == (1, "")
    assert err.startswith(f"ERROR: (NotSupportedByBackend) `amlemu {' '.join(verb[:2])}` acts on this machine")
    assert "the backend is 'azure'" in err and "Unset AMLEMU_BACKEND" in err
    assert fake.calls == []


def test_export_postman_on_azure_uses_the_endpoint_s_uri_and_key(fake_azure, capsys, tmp_path, monkeypatch):
    fake, _ = fake_azure
    endpoint = ManagedOnlineEndpoint(name="ep", auth_mode="key", traffic={"blue": 100})
    # a port nothing listens on: the swagger fetch fails at once, as on an endpoint with no document
    endpoint._scoring_uri, endpoint._openapi_uri = "http://127.0.0.1:9/score", "http://127.0.0.1:9/swagger.json"
    monkeypatch.setitem(fake.online_endpoints._answers, "online_endpoints.get", endpoint)
    code, out, err = run_main(capsys, "online-endpoint", "export-postman", "--name", "ep")
    assert code == 0, err
    collection = json.loads(out)
    variables = {v["key"]: v["value"] for v in collection["variable"]}
    assert variables == {
        "scoring_uri": "http://127.0.0.1:9/score",
        "openapi_uri": "http://127.0.0.1:9/swagger.json",
        "endpoint_key": "pk",
        "deployment": "blue",
    }
    assert json.loads(collection["item"][0]["request"]["body"]["raw"]) == {"data": [[0.0]]}
    request = tmp_path / "request.json"
    request.write_text('{"data": [[5.1, 3.5, 1.4, 0.2]]}')
    code, out, err = run_main(
        capsys, "online-endpoint", "export-postman", "--name", "ep", "--request-file", str(request)
    )
    assert code == 0, err
    assert json.loads(json.loads(out)["item"][0]["request"]["body"]["raw"]) == {"data": [[5.1, 3.5, 1.4, 0.2]]}
    assert [c[0] for c in fake.calls] == ["online_endpoints.get", "online_endpoints.get_keys"] * 2
