"""Registered command components end to end: registered through the CLI and through connect(), named by pipeline
steps (``component: azureml:<name>:<version>``, ``@latest``, a DSL step from ``ml_client.components.get``), run
as command jobs on the process runtime with data flowing between the steps."""

from __future__ import annotations

from pathlib import Path

import pytest

ENV = "azureml:AzureML-sklearn-1.5@latest"
# reads the number in <start>/value.txt, adds n, writes the sum to <out>/value.txt
ADD = """\
import argparse, pathlib
p = argparse.ArgumentParser()
p.add_argument("--start"); p.add_argument("--n", type=int); p.add_argument("--out")
a = p.parse_args()
total = int((pathlib.Path(a.start) / "value.txt").read_text()) + a.n
pathlib.Path(a.out).mkdir(parents=True, exist_ok=True)
(pathlib.Path(a.out) / "value.txt").write_text(str(total))
"""
COMPONENT = f"""\
$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
name: add_number
display_name: Add a number
type: command
code: ./src
environment: {ENV}
command: python add.py --start ${{{{inputs.start}}}} --n ${{{{inputs.n}}}} --out ${{{{outputs.result}}}}
inputs:
  start: {{type: uri_folder}}
  n: {{type: integer, default: 3}}
outputs:
  result: {{type: uri_folder}}
"""
# step one adds 10 to the pipeline's 5; step two (by @latest) adds its default 3 to step one's 15
PIPELINE = """\
type: pipeline
experiment_name: registered-components
inputs:
  start: {type: uri_folder, path: ./start}
outputs:
  total: {type: uri_folder}
jobs:
  first:
    type: command
    component: azureml:add_number:1
    inputs: {start: '${{parent.inputs.start}}', n: 10}
  second:
    type: command
    component: azureml:add_number@latest
    inputs: {start: '${{parent.jobs.first.outputs.result}}'}
    outputs: {result: '${{parent.outputs.total}}'}
"""


def write_component(folder: Path, script: str = ADD) -> Path:
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "src" / "add.py").write_text(script)
    (folder / "component.yml").write_text(COMPONENT)
    (folder / "start").mkdir(exist_ok=True)
    (folder / "start" / "value.txt").write_text("5")
    (folder / "pipeline.yml").write_text(PIPELINE)
    return folder / "component.yml"


def test_a_component_registered_through_the_cli_runs_in_a_pipeline(cli, tmp_path):
    spec = write_component(tmp_path)
    created = cli.json("component", "create", "--file", str(spec))
    assert (created["name"], created["version"], created["type"]) == ("add_number", "1", "command")
    assert created["inputs"]["n"] == {"type": "integer", "default": "3"} and created["id"].endswith(
        "/components/add_number/versions/1"
    )
    again = cli.json("component", "create", "--file", str(spec), "--version", "1", "--set", "description=same")
    assert again["version"] == "1" and again["description"] == "same"  # the same spec: description updated
    assert cli.json("component", "show", "--name", "add_number", "--label", "latest")["description"] == "same"
    changed = cli.run(
        "component", "create", "--file", str(spec), "--version", "1", "--set", "command=echo hi", check=False
    )
    assert changed.returncode == 1 and "already exists with another spec" in changed.stderr
    # the code was copied in at registration: other code is another spec, and the pipeline runs the copy
    (tmp_path / "src" / "add.py").write_text("raise SystemExit('the edited file ran')\n")
    edited = cli.run("component", "create", "--file", str(spec), "--version", "1", check=False)
    assert edited.returncode == 1 and "already exists with another spec" in edited.stderr

    listed = cli.json("component", "list")
    assert [(c["name"], c["latest_version"]) for c in listed] == [("add_number", "1")]
    assert [c["version"] for c in cli.json("component", "list", "--name", "add_number")] == ["1"]

    view = cli.json("job", "create", "--file", str(tmp_path / "pipeline.yml"), "--stream")
    assert view["status"] == "Completed", view
    cli.run("job", "download", "--name", view["name"], "--output-name", "total", "--download-path", str(tmp_path))
    assert (tmp_path / "named-outputs" / "total" / "value.txt").read_text() == "18"
    first = cli.json("job", "show", "--name", view["jobs"]["first"]["job_name"])
    assert first["inputs"]["n"] == 10 and "add.py" in first["command"]


def test_bad_component_files_and_references_are_refused(cli, tmp_path):
    spec = write_component(tmp_path)
    text = spec.read_text()
    spec.write_text(text.replace("name: add_number", "name: Add-Number"))
    bad = cli.run("component", "create", "--file", str(spec), check=False)
    assert bad.returncode == 1 and "Component name 'Add-Number' is invalid" in bad.stderr
    spec.write_text(text.replace("type: command", "type: parallel"))
    other = cli.run("component", "create", "--file", str(spec), check=False)
    assert other.returncode == 1 and "NotEmulated" in other.stderr and "parallel components" in other.stderr

    missing = cli.run("job", "create", "--file", str(tmp_path / "pipeline.yml"), check=False)
    assert missing.returncode == 1
    assert "Pipeline step 'first'" in missing.stderr and "Component 'add_number' version '1' not found" in (
        missing.stderr
    )
    shown = cli.run("component", "show", "--name", "add_number", "--label", "stable", check=False)
    assert shown.returncode == 1 and "labels other than 'latest'" in shown.stderr


@pytest.fixture
def ml_client(amlemu_home):
    import backends

    return backends.connect("local")


def test_a_component_registered_through_connect_runs_in_yaml_and_dsl_pipelines(ml_client, tmp_path):
    from azure.ai.ml import Input, Output, load_component, load_job
    from azure.ai.ml.dsl import pipeline
    from azure.ai.ml.entities import CommandComponent

    spec = write_component(tmp_path)
    registered = ml_client.components.create_or_update(load_component(spec))
    assert isinstance(registered, CommandComponent) and (registered.name, registered.version) == ("add_number", "1")
    second = ml_client.components.create_or_update(load_component(spec), version="2")
    assert second.version == "2"
    latest = ml_client.components.get("add_number", label="latest")
    assert isinstance(latest, CommandComponent) and latest.version == "2"
    assert latest.inputs["n"].default == 3 and Path(latest.code).is_dir()
    assert [c.version for c in ml_client.components.list(name="add_number")] == ["2", "1"]
    assert [(c.name, c.latest_version) for c in ml_client.components.list()] == [("add_number", "2")]

    job = ml_client.jobs.create_or_update(load_job(tmp_path / "pipeline.yml"))
    ml_client.jobs.stream(job.name)
    assert ml_client.jobs.get(job.name).status == "Completed"
    ml_client.jobs.download(job.name, output_name="total", download_path=str(tmp_path / "yaml"))
    assert (tmp_path / "yaml" / "named-outputs" / "total" / "value.txt").read_text() == "18"

    add_number = ml_client.components.get("add_number", version="1")

    @pipeline(experiment_name="registered-components-dsl")
    def twice(start):
        first = add_number(start=start, n=1)
        then = add_number(start=first.outputs.result)
        return {"total": then.outputs.result}

    dsl_job = twice(start=Input(type="uri_folder", path=str(tmp_path / "start")))
    dsl_job.outputs.total = Output(type="uri_folder")
    dsl_job = ml_client.jobs.create_or_update(dsl_job)
    ml_client.jobs.stream(dsl_job.name)
    assert ml_client.jobs.get(dsl_job.name).status == "Completed"
    ml_client.jobs.download(dsl_job.name, output_name="total", download_path=str(tmp_path / "dsl"))
    assert (tmp_path / "dsl" / "named-outputs" / "total" / "value.txt").read_text() == "9"
