"""Pipeline jobs end to end: real steps as child jobs, data flowing through step outputs, failures, cancel."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from emulator.runtime import proctree
from tests.conftest import SAMPLES, processes_mentioning
from tests.e2e.test_cli_jobs import wait_status

ENV = "azureml:AzureML-sklearn-1.5@latest"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def wait_for_lines(path: Path, count: int, timeout: float = 30.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text().split() if path.exists() else []
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"{path} did not get {count} lines in {timeout} s")


def pipeline_log(cli, name) -> str:
    return (cli.home / "workspaces" / "default" / "jobs" / name / "artifacts" / "user_logs" / "std_log.txt").read_text()


def assert_nothing_left_running(home: Path, pids: list[int] = (), timeout: float = 30.0) -> None:
    """No step process, supervisor or orchestrator outlives the pipeline (they get a moment to exit)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (processes_mentioning(str(home)) or any(map(proctree.is_alive, pids))):
        time.sleep(0.1)
    assert not any(proctree.is_alive(p) for p in pids), "step processes were left running"
    assert processes_mentioning(str(home)) == [], "amlemu processes were left running"


def steps(view) -> dict[str, tuple[str | None, str]]:
    return {step: (node.get("job_name"), node["status"]) for step, node in view["jobs"].items()}


# -- the sample pipeline ---------------------------------------------------------------------------
def test_sample_pipeline_through_the_cli(cli, tmp_path):
    view = cli.json(
        "job", "create", "--file", str(SAMPLES / "iris" / "pipeline.yml"), "--set", "inputs.C=0.8", "--stream"
    )
    name = view["name"]
    assert view["type"] == "pipeline" and view["status"] == "Completed"
    assert view["inputs"]["C"] == 0.8 and view["settings"] == {"continue_on_step_failure": False}
    assert view["jobs"]["train"]["outputs"]["model"] == "${{parent.outputs.trained_model}}"
    assert view["jobs"]["score"]["inputs"]["model"] == {"path": "${{parent.jobs.train.outputs.model}}"}
    children = steps(view)
    assert all(status == "Completed" and child for child, status in children.values())

    listed = cli.json("job", "list", "--parent-job-name", name)
    assert sorted((j["display_name"], j["name"], j["status"]) for j in listed) == sorted(
        (step, child, "Completed") for step, (child, _) in children.items()
    )
    assert all(j["parent_job_name"] == name for j in listed)

    train = cli.json("job", "show", "--name", children["train"][0])
    assert train["params"]["C"] == "0.8"  # the pipeline input reached the step's command
    assert train["inputs"]["prepared"]["path"].endswith(f"/jobs/{children['prep'][0]}/outputs/prepared")

    # data flowed: prep split 150 rows 120/30, score read train's model and prep's test split
    cli.run("job", "download", "--name", name, "--output-name", "evaluation", "--download-path", str(tmp_path / "dl"))
    metrics = json.loads((tmp_path / "dl" / "named-outputs" / "evaluation" / "metrics.json").read_text())
    assert metrics["test_rows"] == 30 and metrics["test_accuracy"] > 0.8
    cli.run(
        "job",
        "download",
        "--name",
        children["profile"][0],
        "--output-name",
        "profile",
        "--download-path",
        str(tmp_path / "profile"),
    )
    profile = json.loads((tmp_path / "profile" / "named-outputs" / "profile" / "profile.json").read_text())
    assert sum(profile["train.csv"].values()) == 120

    # the pipeline output is the train step's output folder: registrable as a model
    cli.run("job", "download", "--name", name, "--output-name", "trained_model", "--download-path", str(tmp_path / "m"))
    assert (tmp_path / "m" / "named-outputs" / "trained_model" / "model.onnx").stat().st_size > 100
    model = cli.json(
        "model", "create", "--name", "iris-from-pipeline", "--path", f"azureml://jobs/{name}/outputs/trained_model"
    )
    assert model["job_name"] == name

    log = pipeline_log(cli, name)
    for step in ("prep", "profile", "train", "score"):
        assert f"Step '{step}' started" in log and f"Step '{step}' completed" in log
    # profile and train (one wave) both started before train, the slow one, completed
    assert log.index("Step 'profile' started") < log.index("Step 'train' completed")
    assert log.index("Step 'train' started") < log.index("Step 'profile' completed")
    assert log.index("Step 'score' started") > log.index("Step 'train' completed")


def test_sample_pipeline_through_the_sdk(ml_client, tmp_path):
    from azure.ai.ml import load_job
    from azure.ai.ml.entities import CommandJob, PipelineJob

    job = ml_client.jobs.create_or_update(load_job(SAMPLES / "iris" / "pipeline.yml"), experiment_name="sdk-pipeline")
    assert isinstance(job, PipelineJob)
    ml_client.jobs.stream(job.name)
    done = ml_client.jobs.get(job.name)
    assert done.status == "Completed" and done.experiment_name == "sdk-pipeline"
    assert {done.properties[f"amlemu.steps.{s}.status"] for s in done.jobs} == {"Completed"}
    children = ml_client.jobs.list(parent_job_name=job.name)
    assert len(children) == 4 and all(isinstance(c, CommandJob) and c.status == "Completed" for c in children)
    ml_client.jobs.download(job.name, output_name="evaluation", download_path=str(tmp_path))
    assert json.loads((tmp_path / "named-outputs" / "evaluation" / "metrics.json").read_text())["test_rows"] == 30


def test_dsl_pipeline_through_the_sdk(ml_client, tmp_path):
    from azure.ai.ml import Input, Output, command
    from azure.ai.ml.dsl import pipeline

    code = SAMPLES / "iris" / "pipeline"
    prep = command(
        code=str(code),
        command="python prep.py --data ${{inputs.raw}} --out ${{outputs.prepared}}",
        inputs={"raw": Input(type="uri_file")},
        outputs={"prepared": Output(type="uri_folder")},
        environment=ENV,
    )
    count = command(
        command="wc -l < ${{inputs.prepared}}/test.csv > ${{outputs.counted}}/rows.txt; "
        "echo ${{inputs.label}} >> ${{outputs.counted}}/rows.txt",
        inputs={"prepared": Input(type="uri_folder"), "label": "x"},
        outputs={"counted": Output(type="uri_folder")},
        environment=ENV,
    )

    @pipeline(experiment_name="dsl")
    def prep_and_count(iris_csv, label="rows"):
        prepared = prep(raw=iris_csv)
        counted = count(prepared=prepared.outputs.prepared, label=label)
        return {"counts": counted.outputs.counted}

    job = ml_client.jobs.create_or_update(
        prep_and_count(iris_csv=Input(type="uri_file", path=str(SAMPLES / "iris" / "data" / "iris.csv")))
    )
    ml_client.jobs.stream(job.name)
    ml_client.jobs.download(job.name, output_name="counts", download_path=str(tmp_path))
    assert (tmp_path / "named-outputs" / "counts" / "rows.txt").read_text().split() == ["31", "rows"]


# -- failures ---------------------------------------------------------------------------------------
FAILING = """
type: pipeline
settings: {{continue_on_step_failure: {keep_going}}}
jobs:
  a:
    command: echo data > ${{{{outputs.out}}}}/x.txt
    environment: {env}
    outputs: {{out: {{type: uri_folder}}}}
  b:
    command: cat ${{{{inputs.x}}}}/x.txt; echo b is broken >&2; exit 3
    environment: {env}
    inputs: {{x: "${{{{parent.jobs.a.outputs.out}}}}"}}
    outputs: {{out: {{type: uri_folder}}}}
  c:
    command: cat ${{{{inputs.x}}}}
    environment: {env}
    inputs: {{x: "${{{{parent.jobs.b.outputs.out}}}}"}}
  d:
    command: {d_command}
    environment: {env}
    inputs: {{x: "${{{{parent.jobs.a.outputs.out}}}}"}}
    outputs: {{out: {{type: uri_folder}}}}
  e:
    command: cp ${{{{inputs.x}}}}/x.txt ${{{{outputs.out}}}}/from-d.txt
    environment: {env}
    inputs: {{x: "${{{{parent.jobs.d.outputs.out}}}}"}}
    outputs: {{out: {{type: uri_folder}}}}
"""


def test_a_failing_step_stops_its_dependants_and_cancels_running_steps(cli, tmp_path):
    spec = write(tmp_path / "pipeline.yml", FAILING.format(keep_going="false", env=ENV, d_command="sleep 300"))
    proc = cli.run("job", "create", "--file", str(spec), "--stream", check=False)
    assert proc.returncode != 0 and "Status: Failed" in proc.stdout
    name = proc.stdout.split("RunId: ", 1)[1].split()[0]
    view = cli.json("job", "show", "--name", name)
    assert view["status"] == "Failed"
    assert "Failed nodes: /b" in view["error"]["message"] and "exited with code 3" in view["error"]["message"]
    assert "Not started: c, e" in view["error"]["message"]
    children = steps(view)
    assert children["a"][1] == "Completed" and children["b"][1] == "Failed"
    assert children["d"][1] == "Canceled"  # running when b failed: canceled, as Azure ML does
    assert children["c"] == (None, "NotStarted") and children["e"] == (None, "NotStarted")
    assert sorted(j["display_name"] for j in cli.json("job", "list", "--parent-job-name", name)) == ["a", "b", "d"]
    log = pipeline_log(cli, name)
    assert "b is broken" in log and "Step 'c' will not start: upstream step 'b' failed." in log
    assert "Step 'd' canceled" in log
    assert_nothing_left_running(cli.home)


def test_continue_on_step_failure_runs_independent_branches(cli, tmp_path):
    spec = write(
        tmp_path / "pipeline.yml",
        FAILING.format(keep_going="true", env=ENV, d_command="cp ${{inputs.x}}/x.txt ${{outputs.out}}/x.txt"),
    )
    view = cli.json("job", "create", "--file", str(spec))
    done = wait_status(cli, view["name"])
    assert done["status"] == "Failed" and "Failed nodes: /b" in done["error"]["message"]
    children = steps(done)
    assert {s: status for s, (_, status) in children.items()} == {
        "a": "Completed",
        "b": "Failed",
        "c": "NotStarted",
        "d": "Completed",
        "e": "Completed",
    }
    cli.run(
        "job", "download", "--name", children["e"][0], "--output-name", "out", "--download-path", str(tmp_path / "e")
    )
    assert (tmp_path / "e" / "named-outputs" / "out" / "from-d.txt").read_text() == "data\n"


# -- cancel and a lost orchestrator -------------------------------------------------------------------
SLOW = """
type: pipeline
jobs:
  first:
    command: echo $$ >> {pids}; sleep 300
    environment: {env}
    outputs: {{out: {{type: uri_folder}}}}
  second:
    command: echo $$ >> {pids}; sleep 300
    environment: {env}
  after:
    command: echo never
    environment: {env}
    inputs: {{x: "${{{{parent.jobs.first.outputs.out}}}}"}}
"""


def start_slow_pipeline(cli, tmp_path) -> tuple[str, list[int]]:
    pids = tmp_path / "pids.txt"
    spec = write(tmp_path / "pipeline.yml", SLOW.format(pids=pids, env=ENV))
    name = cli.json("job", "create", "--file", str(spec))["name"]
    step_pids = [int(p) for p in wait_for_lines(pids, 2)]
    assert all(proctree.is_alive(p) for p in step_pids)
    return name, step_pids


def test_cancel_mid_pipeline_stops_every_step_and_leaves_no_orphans(cli, tmp_path):
    name, step_pids = start_slow_pipeline(cli, tmp_path)
    cli.run("job", "cancel", "--name", name)
    done = wait_status(cli, name, timeout=30)
    assert done["status"] == "Canceled"
    children = steps(done)
    assert children["first"][1] == "Canceled" and children["second"][1] == "Canceled"
    assert children["after"] == (None, "NotStarted")
    assert_nothing_left_running(cli.home, step_pids)


GATED = """
type: pipeline
jobs:
  first:
    command: echo $$ >> {pids}; while [ ! -e {gate} ]; do sleep 0.05; done; echo made > ${{{{outputs.out}}}}/made.txt
    environment: {env}
    outputs: {{out: {{type: uri_folder}}}}
  after:
    command: cat ${{{{inputs.x}}}}/made.txt
    environment: {env}
    inputs: {{x: "${{{{parent.jobs.first.outputs.out}}}}"}}
"""


def test_a_killed_orchestrator_is_restarted_and_the_pipeline_resumes(cli, tmp_path):
    from emulator.store import open_store

    pids, gate = tmp_path / "pids.txt", tmp_path / "gate"
    spec = write(tmp_path / "pipeline.yml", GATED.format(pids=pids, gate=gate, env=ENV))
    name = cli.json("job", "create", "--file", str(spec))["name"]
    (step_pid,) = [int(p) for p in wait_for_lines(pids, 1)]
    store = open_store()
    before = store.get_job(name)
    os.kill(before["pid"], signal.SIGKILL)  # as a machine restart would, for the orchestrator
    deadline = time.monotonic() + 30
    while proctree.is_alive(before["pid"], before["pid_start"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    resumed = cli.json("job", "show", "--name", name)  # the read restarts the orchestrator
    assert resumed["status"] == "Running" and store.get_job(name)["pid"] != before["pid"]
    assert proctree.is_alive(step_pid)  # the running step went on
    gate.touch()
    done = wait_status(cli, name, timeout=60)
    assert done["status"] == "Completed"
    children = cli.json("job", "list", "--parent-job-name", name)
    assert sorted(c["display_name"] for c in children) == ["after", "first"]  # the first step ran once
    assert "resuming with 1 child job(s)" in pipeline_log(cli, name)
    assert_nothing_left_running(cli.home, [step_pid])


# -- bad input through the CLI: refused, nothing recorded -----------------------------------------------
@pytest.mark.parametrize(
    "jobs, expected",
    [
        (
            "  a:\n    command: echo ${{inputs.x}}\n    environment: " + ENV + "\n"
            "    inputs: {x: '${{parent.jobs.b.outputs.out}}'}\n    outputs: {out: {type: uri_folder}}\n"
            "  b:\n    command: echo ${{inputs.x}}\n    environment: " + ENV + "\n"
            "    inputs: {x: '${{parent.jobs.a.outputs.out}}'}\n    outputs: {out: {type: uri_folder}}\n",
            ["a -> b -> a"],
        ),
        (
            "  a:\n    command: echo hi\n    environment: " + ENV + "\n    outputs: {out: {type: uri_folder}}\n"
            "  b:\n    command: echo ${{inputs.x}}\n    environment: " + ENV + "\n"
            "    inputs: {x: '${{parent.jobs.a.outputs.nope}}'}\n",
            ["${{parent.jobs.a.outputs.nope}}"],
        ),
        (
            "  a:\n    command: echo ${{inputs.x}}\n    environment: "
            + ENV
            + "\n    inputs: {x: '${{parent.inputs.nope}}'}\n",
            ["${{parent.inputs.nope}}"],
        ),
        # azure-ai-ml reads the YAML first and names the field it misses; amlemu's own check names the command
        (
            "  a:\n    type: command\n    environment: " + ENV + "\n",
            ["'a' has no 'command'", "jobs.a.value.component: Missing data"],
        ),
    ],
)
def test_bad_pipelines_are_refused_by_the_cli(cli, tmp_path, jobs, expected):
    spec = write(tmp_path / "pipeline.yml", "type: pipeline\njobs:\n" + jobs)
    proc = cli.run("job", "create", "--file", str(spec), check=False)
    assert proc.returncode != 0 and any(text in proc.stderr for text in expected), proc.stderr
    assert cli.json("job", "list") == []
