"""amlemu's pytest plugin, run as a user runs it: pytest (``pytester``) on a small project that uses the fixtures.

The cheap checks (options, markers, ``--fixtures``) run pytest in this process; everything that starts jobs,
endpoints and replicas runs pytest in a subprocess (``runpytest_subprocess``), with its own ``--basetemp`` so
that this test can look at the run's state folder afterwards and prove that nothing of it still runs. One
subprocess run exercises several fixtures and failure modes at once: pytest's start and azure-ai-ml's import
cost more than most of the tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.testing.names import MAX_LENGTH, RunNames
from tests.harness import project

pytest_plugins = ["pytester"]

FIXTURES = ("aml_client", "aml_session_client", "aml_run_job", "aml_register_model", "aml_deploy", "aml_compute")

# --- options, markers, fixtures' documentation (pytest in this process: no fixture runs) ---------------------------


def test_options_markers_and_fixtures_are_documented(pytester):
    help_text = pytester.runpytest("--help").stdout.str()
    for option in ("--aml-backend", "--aml-workspace-config", "--aml-keep"):
        assert option in help_text
    markers = pytester.runpytest("--markers").stdout.str()
    for marker in ("@pytest.mark.aml_backend(name)", "@pytest.mark.aml_local_only", "@pytest.mark.aml_azure_only"):
        assert marker in markers
    fixtures = pytester.runpytest("--fixtures", "-v").stdout.str()  # -v: whole docstrings
    for name in FIXTURES:
        assert f"{name} [" in fixtures or f"{name} --" in fixtures, name
    assert "a fresh, isolated workspace" in fixtures and "invoke(payload) -> (status, body)" in fixtures


MARKED = """
import pytest

@pytest.mark.aml_local_only
def test_local_only():
    pass

@pytest.mark.aml_azure_only
def test_azure_only():
    pass

@pytest.mark.aml_backend("azure")
def test_pinned_azure():
    pass

@pytest.mark.aml_backend("local")
def test_pinned_local():
    pass

def test_unmarked():
    pass
"""


def test_markers_skip_tests_pinned_to_the_other_backend_with_the_reason(pytester, monkeypatch):
    monkeypatch.delenv("AMLEMU_BACKEND", raising=False)
    pytester.makepyfile(MARKED)
    local = pytester.runpytest("--strict-markers", "-rs")
    local.assert_outcomes(passed=3, skipped=2)
    local.stdout.fnmatch_lines(
        [
            "SKIPPED*aml_azure_only: runs on the azure backend only; this run uses --aml-backend local*",
            "*aml_backend('azure'): runs on the azure backend only; this run uses --aml-backend local*",
        ]
    )
    on_azure = pytester.runpytest("--strict-markers", "-rs", "--aml-backend", "azure")
    on_azure.assert_outcomes(passed=3, skipped=2)
    on_azure.stdout.fnmatch_lines(["*aml_local_only: runs on the local backend only; this run uses*azure*"])
    monkeypatch.setenv("AMLEMU_BACKEND", "azure")  # the default when --aml-backend is not given
    pytester.runpytest("--strict-markers").assert_outcomes(passed=3, skipped=2)
    pytester.runpytest("--strict-markers", "--aml-backend", "local").assert_outcomes(passed=3, skipped=2)


def test_a_test_pinned_to_both_backends_is_a_usage_error(pytester):
    pytester.makepyfile(
        "import pytest\n@pytest.mark.aml_local_only\n@pytest.mark.aml_azure_only\ndef test_both():\n    pass\n"
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pinned to more than one backend*keep one marker*"])


def test_tests_without_the_fixtures_see_no_change(pytester, monkeypatch):
    monkeypatch.setenv("AMLEMU_HOME", "/nonexistent/users-home")
    monkeypatch.delenv("AMLEMU_BACKEND", raising=False)
    pytester.makepyfile(
        "import os\n"
        "def test_env():\n"
        "    assert os.environ['AMLEMU_HOME'] == '/nonexistent/users-home'\n"
        "    assert 'AMLEMU_BACKEND' not in os.environ\n"
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "amlemu:" not in result.stdout.str()  # no header line of the plugin's


def test_run_names_carry_the_prefix_and_keep_azures_rules():
    names = RunNames()
    assert names.prefix[0].isalpha() and len(names.prefix) == 5
    assert RunNames().prefix != names.prefix or RunNames().prefix != names.prefix  # 26 x 36^4 prefixes
    cluster = names.prefixed("compute", "a-very-long-cluster-name")
    endpoint = names.prefixed("online_endpoint", "iris_endpoint" * 5)
    assert cluster.startswith(names.prefix) and len(cluster) <= MAX_LENGTH["compute"] and cluster[-1] != "-"
    assert endpoint.startswith(names.prefix) and len(endpoint) <= 32
    assert names.prefixed("online_endpoint", "iris") != names.prefixed("online_endpoint", "iris")
    assert RunNames.workspace_for("test_x[param/1]") != RunNames.workspace_for("test_x[param/1]")


# --- the fixtures on the local backend, and what teardown does with failures and leaks ---------------------------

LOCAL_SUITE = """
import pytest
from azure.ai.ml import command
from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint, Model
from harness_record import record

def test_train_register_deploy(aml_client, aml_run_job, aml_register_model, aml_deploy, aml_compute):
    cluster = aml_compute(name="cpu", max_instances=1)
    job = aml_run_job("job.yml", set={"inputs.C": 0.25}, compute=cluster.name)
    assert job.status == "Completed"
    assert job.params["C"] == "0.25" and job.metrics["accuracy"] > 0.8
    assert (job.outputs_dir / "artifacts" / "outputs" / "model.onnx").is_file()
    model = aml_register_model(job.outputs_dir / "artifacts" / "outputs", name="iris")
    assert model.version == "1" and aml_client.models.get("iris", "1").name == "iris"
    ep = aml_deploy(model=model)
    status, body = ep.invoke({"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]})
    assert status == 200 and body == [0, 2], body
    assert ep.key and ep.scoring_uri.startswith("http://127.0.0.1:")
    assert ep.invoke({"data": [[1.0]]})[0] >= 400  # a wrong shape: refused, not a crash
    assert "Listening" in ep.logs() or "listening" in ep.logs().lower(), ep.logs()
    record("train", home=str(aml_client.store.root.parent.parent), workspace=aml_client.workspace_name)

def test_session_client_is_shared(aml_session_client):
    assert aml_session_client.models.list() == []
    record("session", workspace=aml_session_client.workspace_name)

def test_fails_after_deploying(aml_client, aml_deploy):
    ep = aml_deploy(model="model", endpoint_name="doomed")
    record("doomed", workspace=aml_client.workspace_name, uri=ep.scoring_uri)
    assert ep.invoke({"data": [[5.1, 3.5, 1.4, 0.2]]}) == (200, [1]), "deliberately wrong expectation"

def test_job_that_fails(aml_run_job):
    aml_run_job(command(command="echo about-to-fail-on-purpose && exit 3",
                        environment="azureml:AzureML-sklearn-1.5@latest"))

def test_job_file_missing(aml_run_job):
    aml_run_job("jobs/no-such-job.yml")

def test_job_file_with_an_error(aml_run_job, tmp_path):
    (tmp_path / "broken.yml").write_text("command: python x.py\\ninputs: [this is: not a mapping\\n")
    aml_run_job(tmp_path / "broken.yml")

def test_init_raises(aml_client, aml_deploy):
    record("init", workspace=aml_client.workspace_name)
    aml_deploy(model="model", code="bad_score", scoring_script="score.py",
               environment="azureml:AzureML-sklearn-1.5@latest")

def test_leaks_a_replica(aml_client):
    # an endpoint made straight through the client: no fixture will delete it
    aml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="leaky")).result()
    model = aml_client.models.create_or_update(Model(name="leaked", path="model"))
    aml_client.online_deployments.begin_create_or_update(
        ManagedOnlineDeployment(name="blue", endpoint_name="leaky", model=model, instance_count=1)).result()
    record("leak", workspace=aml_client.workspace_name)
"""


def test_fixtures_teardown_and_the_leak_check_on_the_local_backend(pytester, monkeypatch, iris_model):
    record_file = project.make(pytester, monkeypatch, iris_model)
    pytester.makepyfile(test_suite=LOCAL_SUITE)
    result, basetemp = project.run(pytester, "-rA")
    out = result.stdout.str()
    result.assert_outcomes(passed=3, failed=5, errors=1)  # the leak test passes its call and errors at teardown
    created = json.loads(record_file.read_text())
    home = Path(created["train"]["home"])
    assert home.parent == basetemp and home.is_dir()

    # a failed job: its status and its log's tail, once, at the test's line
    result.stdout.fnmatch_lines(
        [
            "*aml_run_job: job '*' ended Failed.",
            "*Last lines of its log*std_log.txt*",
            "*about-to-fail-on-purpose*",
            "*Fix the job's command or code*",
        ]
    )
    # bad input: one message naming the cause and the fix
    result.stdout.fnmatch_lines(
        ["*aml_run_job: the job file 'jobs/no-such-job.yml' does not exist (looked for *no-such-job.yml*Fix the path*"]
    )
    result.stdout.fnmatch_lines(["*aml_run_job: the job file *broken.yml is not a valid job: *Fix the YAML*"])
    result.stdout.fnmatch_lines(
        [
            "*aml_deploy: deployment 'blue' of endpoint 'ep-1' did not start: *",
            "*init-exploded-on-purpose*",
            "*Fix the cause named above in *bad_score/score.py or its environment (an init() that raises*",
        ]
    )
    # the leak check: the endpoint host and its replica made outside the fixtures are listed, then stopped
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks_a_replica*",
            "amlemu teardown of test_suite.py::test_leaks_a_replica (AMLEMU_HOME=*):",
            "  left running after teardown (now stopped):",
        ]
    )
    leak_report = out[out.index("ERROR at teardown of test_leaks_a_replica") :]
    assert f"emulator.endpoints.host {home}/workspaces/{created['leak']['workspace']} leaky" in leak_report
    assert leak_report.count("    process ") >= 2, leak_report  # the host and its replica
    assert "Fix: delete what the test created outside the aml_* fixtures" in leak_report
    # the failing tests' own teardown passed: their endpoints were deleted, not reported as leaks
    assert out.count("ERROR at teardown") == 1
    # nothing of any test (nor of the session workspace) runs any more
    project.nothing_runs_under(home)
