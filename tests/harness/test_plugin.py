"""amlemu's pytest plugin, run as a user runs it: pytest (``pytester``) on a small project that uses the fixtures.

The cheap checks (options, markers, ``--fixtures``) run pytest in this process; everything that starts jobs,
endpoints and replicas runs pytest in a subprocess (``runpytest_subprocess``), with its own ``--basetemp`` so
that this test can look at the run's state folder afterwards and prove that nothing of it still runs. One
subprocess run exercises several fixtures and failure modes at once: pytest's start and azure-ai-ml's import
cost more than most of the tests.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from emulator import config
from emulator.compute import service as computes
from emulator.endpoints import records
from emulator.store import WorkspaceStore
from emulator.testing import leaks
from emulator.testing.names import MAX_LENGTH, RunNames

pytest_plugins = ["pytester"]

IRIS = Path(__file__).resolve().parents[2] / "sample_models" / "iris"
FIXTURES = ("aml_client", "aml_session_client", "aml_run_job", "aml_register_model", "aml_deploy", "aml_compute")
SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
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


def _project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, iris_model: Path) -> Path:
    """The user's repository: the iris job (job.yml, src/, data/), a trained ONNX model, a scorer whose init()
    raises; returns the record file the inner tests write."""
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


def _run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, Path]:
    basetemp = pytester.path / "basetemp"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "ignore", "--basetemp", str(basetemp), *args, timeout=SUBPROCESS_TIMEOUT
    )
    return result, basetemp


def _nothing_runs_under(folder: Path) -> None:
    left = leaks.processes_under(folder)
    if left:
        leaks.stop_workspace(folder.parent.parent, folder.name) if folder.parent.name == "workspaces" else None
    assert not left, f"still running under {folder}:\n" + "\n".join(map(str, left))


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
    record_file = _project(pytester, monkeypatch, iris_model)
    pytester.makepyfile(test_suite=LOCAL_SUITE)
    result, basetemp = _run(pytester, "-rA")
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
            "*Fix *bad_score/score.py so that its replica starts*the endpoint was deleted.",
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
    _nothing_runs_under(home)


KEEP_SUITE = """
import pytest
from harness_record import record

def test_a_kept_after_failure(aml_client, aml_deploy):
    ep = aml_deploy(model="model", endpoint_name="kept")
    record("kept", workspace=aml_client.workspace_name, uri=ep.scoring_uri, key=ep.key)
    assert False, "fails on purpose"

def test_b_deleted_after_success(aml_client, aml_deploy):
    ep = aml_deploy(model="model", endpoint_name="passing")
    record("passing", workspace=aml_client.workspace_name)

def test_c_interrupted(aml_client, aml_deploy):
    aml_deploy(model="model", endpoint_name="interrupted")
    record("interrupted", workspace=aml_client.workspace_name)
    raise KeyboardInterrupt
"""


def test_keep_keeps_a_failed_tests_endpoint_and_ctrl_c_still_tears_down(pytester, monkeypatch, iris_model):
    record_file = _project(pytester, monkeypatch, iris_model)
    pytester.makepyfile(test_suite=KEEP_SUITE)
    result, basetemp = _run(pytester, "--aml-keep")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    created = json.loads(record_file.read_text())
    home = basetemp / "amlemu-home0"  # the first of mktemp("amlemu-home")
    kept = home / "workspaces" / created["kept"]["workspace"]
    try:
        result.stdout.fnmatch_lines(
            [
                "*amlemu: kept after failing tests (--aml-keep)*",
                f"test_suite.py::test_a_kept_after_failure: AMLEMU_HOME={home} "
                f"AMLEMU_WORKSPACE={created['kept']['workspace']}",
                f"  endpoint kept: {created['kept']['uri']} (deployment blue)",
            ]
        )
        # the kept endpoint still serves, with its key, after pytest has exited
        import urllib.request

        request = urllib.request.Request(
            created["kept"]["uri"],
            data=b'{"data": [[5.1, 3.5, 1.4, 0.2]]}',
            headers={"Authorization": f"Bearer {created['kept']['key']}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read()) == [0]
        # a passing test's endpoint and an interrupted test's endpoint were deleted all the same
        _nothing_runs_under(home / "workspaces" / created["passing"]["workspace"])
        _nothing_runs_under(home / "workspaces" / created["interrupted"]["workspace"])
    finally:
        leaks.stop_workspace(home, kept.name)
    _nothing_runs_under(home)


PARALLEL_SUITE = """
import pytest

@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_same_names_on_every_worker(aml_client, aml_deploy, n):
    ep = aml_deploy(model="model", endpoint_name="iris")  # the same endpoint name in every test
    assert ep.invoke({"data": [[5.1, 3.5, 1.4, 0.2]]}) == (200, [0])
"""


def test_two_xdist_workers_never_clash(pytester, monkeypatch, iris_model):
    _project(pytester, monkeypatch, iris_model)
    pytester.makepyfile(test_suite=PARALLEL_SUITE)
    result, basetemp = _run(pytester, "-n", "2")
    result.assert_outcomes(passed=4)
    homes = sorted(basetemp.glob("*/amlemu-home0"))
    assert len(homes) == 2 and homes[0].parent != homes[1].parent  # one state folder per worker
    for home in homes:
        _nothing_runs_under(home)


# --- the same fixtures with --aml-backend azure: the real MLClient, here against `amlemu serve` -------------------

AZURE_SUITE = """
from harness_record import record

def test_on_azure(aml_client, aml_run_job, aml_deploy, aml_compute):
    cluster = aml_compute(name="cpu", max_instances=1)
    assert cluster.name != "cpu" and cluster.name.endswith("-cpu")  # the run's prefix
    job = aml_run_job("job-file-input-only.yml", set={"display_name": "on-azure"}, compute=cluster.name,
                      download=False)  # the front door does not emulate jobs.download (POST .../rundata) yet
    assert job.display_name == "on-azure" and job.outputs_dir is None
    assert job.params["C"] == "0.25" and job.metrics["accuracy"] > 0.8
    ep = aml_deploy(model="model", endpoint_name="iris")
    assert ep.invoke({"data": [[5.1, 3.5, 1.4, 0.2]]}) == (200, [0])
    record("azure", workspace=aml_client.workspace_name, endpoint=ep.name, cluster=cluster.name)

def test_fails_on_azure(aml_deploy):
    ep = aml_deploy(model="model", endpoint_name="iris")
    record("azure-failed", endpoint=ep.name)
    assert False, "fails on purpose: the endpoint is deleted all the same"

def test_terminated_on_azure(aml_deploy):
    import os, signal
    ep = aml_deploy(model="model", endpoint_name="iris")
    record("azure-terminated", endpoint=ep.name)
    os.kill(os.getpid(), signal.SIGTERM)  # a cancelled CI job: teardown still deletes what costs money
"""


def test_the_same_fixtures_on_the_azure_backend_against_amlemu_serve(pytester, monkeypatch, iris_model, front_door):
    record_file = _project(pytester, monkeypatch, iris_model)
    for key, value in front_door.variables.items():  # what `eval "$(amlemu env)"` sets, and nothing else
        monkeypatch.setenv(key, value)
    workspace = f"ws-{RunNames().prefix}"
    (pytester.path / "config.json").write_text(
        json.dumps({"subscription_id": SUBSCRIPTION, "resource_group": "harness-rg", "workspace_name": workspace})
    )
    # literal inputs (inputs.C) fail in the front door's PUT job today (ValidationException "<class 'str'> does
    # not have path"): this job passes C on its command line and has the file input only
    job = (pytester.path / "job.yml").read_text()
    job = job.replace("--C ${{inputs.C}} --max_iter ${{inputs.max_iter}}", "--C 0.25")
    job = job.replace("  C: 0.5\n  max_iter: 200\n", "")
    (pytester.path / "job-file-input-only.yml").write_text(job)
    pytester.makepyfile(test_suite=AZURE_SUITE)
    result, _ = _run(pytester, "--aml-backend", "azure", "--aml-workspace-config", "config.json")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(passed=1, failed=1)
    created = json.loads(record_file.read_text())
    assert created["azure"]["workspace"] == workspace
    endpoints = {created[test]["endpoint"] for test in ("azure", "azure-failed", "azure-terminated")}
    assert len(endpoints) == 3 and len({name.split("-")[0][:5] for name in endpoints}) == 1  # the run's prefix
    # teardown deleted both endpoints and the cluster, through the SDK: nothing of them is left in the workspace
    store = WorkspaceStore(front_door.home / "workspaces" / workspace, workspace)
    assert records.list_endpoints(store) == []
    assert [c["name"] for c in computes.list_computes(store)] == []
    _nothing_runs_under(front_door.home / "workspaces" / workspace)
