"""Pipeline jobs through the front door: the real ``MLClient`` registers each step as a component (anonymous for
``command()`` steps, named through ``ml_client.components``), submits the job naming them by id, streams it, lists
its steps and downloads its named output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

CURATED = "AzureML-sklearn-1.5@latest"
PROVIDER = "providers/Microsoft.MachineLearningServices"


@pytest.fixture
def cluster(sdk):
    from azure.ai.ml.entities import AmlCompute

    sdk.compute.begin_create_or_update(AmlCompute(name="steps", min_instances=0, max_instances=2)).result()
    return "steps"


def _multiply(tmp_path):
    """An anonymous step with code: the SDK uploads the folder and the component names the code asset."""
    from azure.ai.ml import Input, Output, command

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "multiply.py").write_text(
        "import pathlib, sys\n"
        "number = int((pathlib.Path(sys.argv[1]) / 'n.txt').read_text())\n"
        "(pathlib.Path(sys.argv[3]) / 'n.txt').write_text(str(number * int(sys.argv[2])))\n"
    )
    return command(
        code=str(tmp_path / "src"),
        command="python multiply.py ${{inputs.number}} ${{inputs.factor}} ${{outputs.result}}",
        inputs={"number": Input(type="uri_folder"), "factor": 2},
        outputs={"result": Output(type="uri_folder")},
        environment=CURATED,
    )


def test_pipeline_of_a_named_and_an_anonymous_component(sdk, cluster, tmp_path, capsys):
    from azure.ai.ml import Output
    from azure.ai.ml.dsl import pipeline
    from azure.ai.ml.entities import CommandComponent

    def make(number: int) -> CommandComponent:
        return CommandComponent(
            name="make_number",
            command=f"echo {number} > ${{{{outputs.number}}}}/n.txt",
            outputs={"number": Output(type="uri_folder")},
            environment=CURATED,
        )

    # a named component without a version is numbered from its container's nextVersion
    assert sdk.components.create_or_update(make(4)).version == "1"
    assert sdk.components.create_or_update(make(5)).version == "2"
    assert sorted(c.version for c in sdk.components.list("make_number")) == ["1", "2"]
    registered = sdk.components.get("make_number", version="2")
    assert registered.command == "echo 5 > ${{outputs.number}}/n.txt"
    multiply = _multiply(tmp_path)

    @pipeline(experiment_name="front-door-pipeline", default_compute=cluster)
    def make_and_multiply(factor):
        made = registered()
        multiplied = multiply(number=made.outputs.number, factor=factor)
        return {"result": multiplied.outputs.result}

    job = sdk.jobs.create_or_update(make_and_multiply(factor=3))
    assert job.type == "pipeline" and job.status in ("NotStarted", "Queued", "Preparing", "Running", "Completed")
    sdk.jobs.stream(job.name)
    out = capsys.readouterr().out
    assert "Step 'made' completed" in out and "Step 'multiplied' completed" in out and "Execution Summary" in out

    done = sdk.jobs.get(job.name)
    assert done.status == "Completed" and done.experiment_name == "front-door-pipeline"
    made_id, multiplied_id = done.jobs["made"].component, done.jobs["multiplied"].component
    assert made_id == "make_number:2"  # the SDK shows a step's component as name:version
    assert multiplied_id.startswith("azureml_anonymous:"), multiplied_id
    anonymous = sdk.components.get("azureml_anonymous", version=multiplied_id.partition(":")[2])
    assert "/codes/" in anonymous.code and "multiply.py" in anonymous.command

    steps = list(sdk.jobs.list(parent_job_name=job.name))
    assert len(steps) == 2 and {s.status for s in steps} == {"Completed"}
    assert {s.display_name for s in steps} == {"made", "multiplied"}
    sdk.jobs.download(job.name, output_name="result", download_path=str(tmp_path / "out"))
    assert (tmp_path / "out" / "named-outputs" / "result" / "n.txt").read_text().strip() == "15"


def test_a_pipeline_input_from_a_data_asset(sdk, cluster, tmp_path):
    from azure.ai.ml import Input, Output, command
    from azure.ai.ml.dsl import pipeline
    from azure.ai.ml.entities import Data

    (tmp_path / "n.txt").write_text("6")
    sdk.data.create_or_update(Data(name="six", version="1", path=str(tmp_path / "n.txt"), type="uri_file"))
    copy = command(
        command="cp ${{inputs.number}} ${{outputs.copied}}/n.txt",
        inputs={"number": Input(type="uri_file")},
        outputs={"copied": Output(type="uri_folder")},
        environment=CURATED,
    )

    @pipeline(default_compute=cluster)
    def copied(number):
        return {"copied": copy(number=number).outputs.copied}

    job = sdk.jobs.create_or_update(copied(number=Input(type="uri_file", path="azureml:six:1")))
    sdk.jobs.stream(job.name)
    assert sdk.jobs.get(job.name).status == "Completed"
    sdk.jobs.download(job.name, output_name="copied", download_path=str(tmp_path / "out"))
    assert (tmp_path / "out" / "named-outputs" / "copied" / "n.txt").read_text() == "6"


def test_a_component_version_does_not_change(sdk):
    from azure.ai.ml.entities import CommandComponent
    from azure.core.exceptions import ResourceExistsError

    def echo(text: str) -> CommandComponent:
        return CommandComponent(name="echo_text", version="7", command=f"echo {text}", environment=CURATED)

    assert sdk.components.create_or_update(echo("a")).version == "7"
    again = sdk.components.create_or_update(echo("a"))  # the same spec again: the same version
    assert again.version == "7" and again.command == "echo a"
    with pytest.raises(ResourceExistsError, match="already exists with another spec"):
        sdk.components.create_or_update(echo("b"))
    assert sdk.components.get("echo_text", version="7").command == "echo a"


def test_a_step_of_a_kind_not_emulated_answers_501_naming_it(sdk, cluster):
    from azure.ai.ml import command
    from azure.ai.ml.dsl import pipeline
    from azure.ai.ml.sweep import Choice
    from azure.core.exceptions import HttpResponseError

    trial = command(command="echo ${{inputs.c}}", inputs={"c": 0.5}, environment=CURATED)

    @pipeline(default_compute=cluster)
    def tuned():
        step = trial(c=Choice([0.1, 0.2])).sweep(sampling_algorithm="grid", primary_metric="acc", goal="maximize")
        step.set_limits(max_total_trials=2)

    with pytest.raises(HttpResponseError) as err:
        sdk.jobs.create_or_update(tuned())
    assert err.value.status_code == 501 and err.value.error.code == "NotEmulated"
    assert "sweep steps in pipeline jobs (step 'step')" in err.value.message


def _arm(front_door, workspace_name: str, tail: str) -> tuple[str, dict[str, str], str]:
    from azure.identity import DefaultAzureCredential

    base = f"https://127.0.0.1:{front_door.port + 1}"
    token = DefaultAzureCredential().get_token(f"{base}/.default").token
    workspace = f"/subscriptions/s/resourceGroups/r/{PROVIDER}/workspaces/{workspace_name}"
    return f"{base}{workspace}/{tail}?api-version=2025-12-01", {"Authorization": f"Bearer {token}"}, workspace


def test_a_step_naming_a_missing_component_is_404(sdk, front_door, workspace_name, cluster):
    url, headers, workspace = _arm(front_door, workspace_name, "jobs/names-a-missing-component")
    body = {
        "properties": {
            "jobType": "Pipeline",
            "settings": {"default_compute": f"{workspace}/computes/{cluster}"},
            "jobs": {
                "first": {
                    "name": "first",
                    "type": "command",
                    "componentId": f"{workspace}/components/never_registered/versions/1",
                }
            },
        }
    }
    verify = front_door.variables["REQUESTS_CA_BUNDLE"]
    r = requests.put(url, json=body, headers=headers, verify=verify, timeout=30)
    assert r.status_code == 404, r.text
    message = r.json()["error"]["message"]
    assert "Component 'never_registered' version '1' not found" in message and "Register it first" in message
    assert requests.get(url, headers=headers, verify=verify, timeout=30).status_code == 404  # nothing was recorded


def test_a_component_of_a_type_not_emulated_answers_501(sdk, front_door, workspace_name):
    sdk.workspaces.get(workspace_name)
    url, headers, _ = _arm(front_door, workspace_name, "components/split/versions/1")
    spec = {"name": "split", "type": "parallel", "task": {"type": "run_function", "entry_script": "split.py"}}
    verify = front_door.variables["REQUESTS_CA_BUNDLE"]
    r = requests.put(url, json={"properties": {"componentSpec": spec}}, headers=headers, verify=verify, timeout=30)
    assert r.status_code == 501 and r.json()["error"]["code"] == "NotEmulated", r.text
    assert "parallel components (component 'split')" in r.json()["error"]["message"]
    r = requests.put(url, json={"properties": {}}, headers=headers, verify=verify, timeout=30)
    assert r.status_code == 400 and "properties.componentSpec" in r.json()["error"]["message"], r.text


def test_a_pipeline_the_cli_ran_reads_through_the_front_door(sdk, front_door, workspace_name, tmp_path):
    """Steps written inline (``amlemu job create``) answer with the anonymous component of each, registered once, as
    Azure registers a pipeline's steps whatever the client (the SDK cannot read a step without one)."""
    spec = tmp_path / "pipeline.yml"
    spec.write_text(
        "type: pipeline\n"
        "jobs:\n"
        "  hello:\n"
        "    command: echo hello > ${{outputs.greeting}}/g.txt\n"
        f"    environment: azureml:{CURATED}\n"
        "    outputs:\n"
        "      greeting: {type: uri_folder}\n"
    )
    env = {**os.environ, "AMLEMU_HOME": str(front_door.home)}
    env.pop("AMLEMU_BACKEND", None)
    command = [sys.executable, "-m", "emulator.cli.main", "job", "create", "-w", workspace_name, "-f", str(spec)]
    out = subprocess.run([*command, "--stream"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    name = json.loads(out.stdout[out.stdout.index("{") :])["name"]

    done = sdk.jobs.get(name)
    assert done.type == "pipeline" and done.status == "Completed"
    reference = done.jobs["hello"].component
    assert reference.startswith("azureml_anonymous:") and sdk.jobs.get(name).jobs["hello"].component == reference
    component = sdk.components.get("azureml_anonymous", version=reference.partition(":")[2])
    assert component.command == "echo hello > ${{outputs.greeting}}/g.txt" and list(component.outputs) == ["greeting"]
    assert [s.status for s in sdk.jobs.list(parent_job_name=name)] == ["Completed"]
