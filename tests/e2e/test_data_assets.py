"""Data assets and datastores end to end: `amlemu data|datastore`, ml_client.data|datastores, and jobs
that read data assets and datastore paths and write outputs to a datastore that a second job reads back."""

from __future__ import annotations

import docker
import pytest

from tests.e2e.test_cli_bad_input import assert_rejected
from tests.e2e.test_cli_jobs import write

ENV = "environment: azureml:AzureML-sklearn-1.5@latest\n"


def test_cli_data_lifecycle(cli, tmp_path):
    write(tmp_path / "data" / "iris.csv", "sepal,petal\n1,2\n")
    spec = write(
        tmp_path / "data.yml",
        "$schema: https://azuremlschemas.azureedge.net/latest/data.schema.json\n"
        "name: iris\nversion: '1'\ntype: uri_file\npath: ./data/iris.csv\ndescription: the iris table\n"
        "tags: {source: local}\n",
    )
    v1 = cli.json("data", "create", "--file", str(spec))
    assert v1["version"] == "1" and v1["type"] == "uri_file" and v1["tags"] == {"source": "local"}
    assert v1["path"].startswith("azureml://datastores/workspaceblobstore/paths/LocalUpload/")
    assert v1["path"].endswith("/iris.csv") and v1["id"].endswith("/data/iris/versions/1")
    v2 = cli.json("data", "create", "--name", "iris", "--path", str(tmp_path / "data"), "--type", "uri_folder")
    assert v2["version"] == "2" and v2["path"].endswith("/data/")
    assert [v["version"] for v in cli.json("data", "list", "--name", "iris")] == ["2", "1"]
    assert [(d["name"], d["latest_version"]) for d in cli.json("data", "list")] == [("iris", "2")]
    assert cli.json("data", "show", "--name", "iris", "--label", "latest")["version"] == "2"
    assert cli.json("data", "show", "--name", "iris", "--version", "1")["description"] == "the iris table"

    cli.run("data", "archive", "--name", "iris", "--version", "2")
    assert cli.json("data", "show", "--name", "iris")["version"] == "1"  # latest: the newest not archived
    assert [v["version"] for v in cli.json("data", "list", "--name", "iris")] == ["1"]
    assert [v["version"] for v in cli.json("data", "list", "--name", "iris", "--include-archived")] == ["2", "1"]
    cli.run("data", "archive", "--name", "iris")
    assert cli.json("data", "list") == []
    assert [d["name"] for d in cli.json("data", "list", "--archived-only")] == ["iris"]
    assert_rejected(cli, ["data", "show", "--name", "iris"], "archived", "data restore")
    cli.run("data", "restore", "--name", "iris")
    cli.run("data", "restore", "--name", "iris", "--version", "2")
    assert cli.json("data", "show", "--name", "iris")["version"] == "2"

    updated = cli.json("data", "update", "--name", "iris", "--version", "1", "--set", "tags.stage=prod")
    assert updated["tags"] == {"source": "local", "stage": "prod"} and updated["path"] == v1["path"]
    assert_rejected(cli, ["data", "update", "--name", "iris", "--version", "1", "--set", "path=./x"], "cannot change")

    stores = cli.json("datastore", "list")
    assert [s["name"] for s in stores] == ["workspaceblobstore", "workspaceartifactstore", "workspacefilestore"]
    blob = cli.json("datastore", "show", "--name", "workspaceblobstore")
    assert blob["type"] == "azure_blob" and blob["container_name"].startswith("azureml-blobstore-")
    assert cli.json("datastore", "show", "--name", "workspacefilestore")["type"] == "azure_file"


def test_cli_bad_data_input(cli, tmp_path):
    write(tmp_path / "data" / "x.csv", "x\n")
    assert_rejected(cli, ["data", "create", "--name", "d", "--type", "uri_file"], "needs a 'path'", "--path")
    bad_type = write(tmp_path / "bad.yml", "name: d\ntype: table\npath: ./data/x.csv\n")
    assert_rejected(cli, ["data", "create", "--file", str(bad_type)], "'table' is unknown", "uri_folder")
    assert_rejected(
        cli, ["data", "create", "--name", "d", "--path", str(tmp_path / "data" / "x.csv")], "is a file", "uri_file"
    )
    assert_rejected(
        cli,
        ["data", "create", "--name", "d", "--type", "mltable", "--path", str(tmp_path / "data")],
        "no MLTable file",
    )
    assert_rejected(
        cli, ["data", "create", "--name", "d", "--path", "azureml://datastores/mine/paths/x"], "'mine' not found"
    )
    assert_rejected(cli, ["data", "show", "--name", "ghost"], "no versions", "amlemu data create --name ghost")
    assert_rejected(cli, ["datastore", "show", "--name", "mine"], "workspaceblobstore")
    assert_rejected(cli, ["datastore", "create", "--name", "mine"], "not emulated", "workspaceblobstore")
    unknown = write(tmp_path / "unknown.yml", "name: d\npath: ./data\nflavour: x\n")
    assert_rejected(cli, ["data", "create", "--file", str(unknown)], "flavour")
    assert cli.json("data", "list", "--include-archived") == []


def test_jobs_read_data_assets_and_a_second_job_reads_what_the_first_wrote_to_a_datastore(cli, tmp_path):
    write(tmp_path / "raw" / "part-0.csv", "x\n1\n2\n")
    cli.json("data", "create", "--name", "raw", "--path", str(tmp_path / "raw"), "--type", "uri_folder")
    first = write(
        tmp_path / "prep.yml",
        "$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json\n"
        "command: >-\n"
        "  cat ${{inputs.raw}}/part-0.csv | wc -l > ${{outputs.features}}/count.txt &&\n"
        "  echo ok > ${{outputs.summary}}/done.txt\n" + ENV + "inputs:\n"
        "  raw: {type: uri_folder, path: azureml:raw@latest, mode: ro_mount}\n"
        "outputs:\n"
        "  features:\n"
        "    type: uri_folder\n"
        "    path: azureml://datastores/workspaceblobstore/paths/features/${{name}}/\n"
        "  summary: {type: uri_folder, name: prep-summary}\n",  # registered as a data asset when the job completes
    )
    prep = cli.json("job", "create", "--file", str(first), "--stream")
    assert prep["status"] == "Completed", prep
    assert prep["inputs"]["raw"]["path"] == "azureml:raw:1"  # @latest resolved at submit, as Azure does
    written = f"azureml://datastores/workspaceblobstore/paths/features/{prep['name']}/"
    assert cli.json("job", "show", "--name", prep["name"])["outputs"]["features"]["path"] == written
    folder = cli.home / "workspaces/default/datastores/workspaceblobstore/features" / prep["name"]
    assert (folder / "count.txt").read_text().strip() == "3"
    summary = cli.json("data", "show", "--name", "prep-summary")
    assert summary["version"] == "1" and summary["type"] == "uri_folder"
    assert summary["path"] == f"azureml://datastores/workspaceblobstore/paths/azureml/{prep['name']}/summary/"
    assert prep["outputs"]["summary"]["name"] == "prep-summary"

    second = write(
        tmp_path / "use.yml",
        "command: >-\n  echo rows=$(cat ${{inputs.features}}/count.txt) again=$(cat ${{inputs.again}})\n"
        "  && cat ${{inputs.table}}\n" + ENV + "inputs:\n"
        f"  features: {{type: uri_folder, path: '{written}'}}\n"
        f"  again: {{type: uri_file, path: 'azureml://jobs/{prep['name']}/outputs/features/paths/count.txt'}}\n"
        "  table: {type: uri_file, path: 'azureml:counts:1'}\n",
    )
    cli.json("data", "create", "--name", "counts", "--type", "uri_file", "--path", written + "count.txt")
    use = cli.json("job", "create", "--file", str(second), "--stream")
    assert use["status"] == "Completed", use
    log = (cli.home / "workspaces/default/jobs" / use["name"] / "artifacts/user_logs/std_log.txt").read_text()
    assert "rows=3 again=3" in log

    cli.run(
        "job", "download", "--name", prep["name"], "--output-name", "features", "--download-path", str(tmp_path / "dl")
    )
    assert (tmp_path / "dl" / "named-outputs" / "features" / "count.txt").read_text().strip() == "3"

    missing = write(
        tmp_path / "missing.yml",
        "command: echo ${{inputs.x}}\n" + ENV + "inputs:\n  x: {type: uri_folder, path: azureml:nothing@latest}\n",
    )
    assert_rejected(cli, ["job", "create", "--file", str(missing)], "'nothing'", "amlemu data create")
    bad_store = write(
        tmp_path / "bad_store.yml",
        "command: echo ${{outputs.o}}\n" + ENV + "outputs:\n  o: {path: azureml://datastores/elsewhere/paths/o/}\n",
    )
    assert_rejected(cli, ["job", "create", "--file", str(bad_store)], "'elsewhere' not found", "workspaceblobstore")


def test_python_client_data_and_datastores(ml_client, tmp_path, monkeypatch):
    from azure.ai.ml import Input, Output, command
    from azure.ai.ml.constants import AssetTypes, ListViewType
    from azure.ai.ml.entities import AzureBlobDatastore, Data
    from azure.core.exceptions import ResourceNotFoundError

    monkeypatch.chdir(tmp_path)
    write(tmp_path / "local" / "file.csv", "a,b\n1,2\n")
    created = ml_client.data.create_or_update(
        Data(name="tbl", path="./local/file.csv", type=AssetTypes.URI_FILE, description="d", tags={"k": "v"})
    )
    assert isinstance(created, Data) and created.version == "1" and created.tags == {"k": "v"}
    assert created.path.startswith("azureml://datastores/workspaceblobstore/paths/LocalUpload/")
    ml_client.data.create_or_update(Data(name="tbl", path="./local", type=AssetTypes.URI_FOLDER))
    assert ml_client.data.get("tbl", label="latest").version == "2"
    assert ml_client.data.get("tbl", version="1").description == "d"
    assert [d.version for d in ml_client.data.list(name="tbl")] == ["2", "1"]
    assert [(d.name, d.latest_version) for d in ml_client.data.list()] == [("tbl", "2")]
    ml_client.data.archive("tbl", version="2")
    assert ml_client.data.get("tbl", label="latest").version == "1"
    assert len(list(ml_client.data.list(name="tbl", list_view_type=ListViewType.ALL))) == 2
    ml_client.data.restore("tbl", version="2")
    with pytest.raises(ResourceNotFoundError):
        ml_client.data.get("ghost", label="latest")

    default = ml_client.datastores.get_default()
    assert isinstance(default, AzureBlobDatastore) and default.name == "workspaceblobstore"
    assert {d.name for d in ml_client.datastores.list()} == {
        "workspaceblobstore",
        "workspaceartifactstore",
        "workspacefilestore",
    }
    assert ml_client.datastores.get("workspacefilestore").file_share_name.startswith("code-")

    job = ml_client.create_or_update(  # MLClient's own create_or_update hands a job to ml_client.jobs
        command(
            command="cp ${{inputs.t}} ${{outputs.o}}/copy.csv",
            environment="azureml:AzureML-sklearn-1.5@latest",
            inputs={"t": Input(type=AssetTypes.URI_FILE, path=created.id)},  # the asset's ARM id, as the SDK gives it
            outputs={
                "o": Output(type=AssetTypes.URI_FOLDER, path="azureml://datastores/workspaceblobstore/paths/copies/")
            },
        )
    )
    done = ml_client.jobs.wait(job.name, timeout=120)
    assert done.status == "Completed" and done.inputs["t"].path == "azureml:tbl:1"
    assert open(f"{done.outputs['o'].path}/copy.csv").read() == "a,b\n1,2\n"


@pytest.mark.docker
def test_a_container_job_reads_a_data_asset_and_writes_to_a_datastore(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("AMLEMU_RUNTIME", "docker")
    docker.from_env().ping()  # fails (never skips) without an engine
    write(tmp_path / "d" / "x.txt", "hello\n")
    cli.json("data", "create", "--name", "d", "--path", str(tmp_path / "d"))
    spec = write(
        tmp_path / "job.yml",
        "command: cp ${{inputs.d}}/x.txt ${{outputs.o}}/y.txt\n"
        "environment: {image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest}\n"  # the local base image
        "inputs:\n"
        "  d: {type: uri_folder, path: 'azureml:d:1'}\n"
        "outputs:\n  o: {type: uri_folder, path: 'azureml://datastores/workspaceblobstore/paths/from-docker/'}\n",
    )
    job = cli.json("job", "create", "--file", str(spec), "--stream")
    assert job["status"] == "Completed", job
    out = cli.home / "workspaces/default/datastores/workspaceblobstore/from-docker/y.txt"
    assert out.read_text() == "hello\n"


def test_sweep_trials_read_a_data_asset_and_each_write_their_own_datastore_folder(cli, tmp_path):
    write(tmp_path / "d" / "rows.txt", "1\n2\n")
    cli.json("data", "create", "--name", "rows", "--path", str(tmp_path / "d"))
    spec = write(
        tmp_path / "sweep.yml",
        "type: sweep\n"
        "trial:\n"
        "  command: >-\n"
        "    python -c \"import mlflow; mlflow.log_metric('m', ${{search_space.k}})\" &&\n"
        "    cp ${{inputs.rows}}/rows.txt ${{outputs.copy}}/k${{search_space.k}}.txt\n"
        "  " + ENV + "inputs:\n  rows: {type: uri_folder, path: 'azureml:rows@latest'}\n"
        "outputs:\n  copy: {type: uri_folder, path: 'azureml://datastores/workspaceblobstore/paths/trials/${{name}}/'}\n"
        "sampling_algorithm: grid\n"
        "search_space:\n  k: {type: choice, values: [1, 2]}\n"
        "objective: {goal: maximize, primary_metric: m}\n"
        "limits: {max_total_trials: 2, max_concurrent_trials: 2}\n",
    )
    sweep = cli.json("job", "create", "--file", str(spec), "--stream")
    assert sweep["status"] == "Completed", sweep
    trials = cli.json("job", "list", "--parent-job-name", sweep["name"])
    assert len(trials) == 2
    root = cli.home / "workspaces/default/datastores/workspaceblobstore/trials"
    written = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.txt"))
    assert len(written) == 2 and {w.split("/")[1] for w in written} == {"k1.txt", "k2.txt"}
    for trial in trials:
        assert (
            trial["outputs"]["copy"]["path"] == f"azureml://datastores/workspaceblobstore/paths/trials/{trial['name']}/"
        )
        assert len(list((root / trial["name"]).glob("k*.txt"))) == 1


def test_pipeline_input_is_a_data_asset_and_a_step_writes_to_a_datastore(cli, tmp_path):
    write(tmp_path / "d" / "x.txt", "from the asset\n")
    cli.json("data", "create", "--name", "pipe-in", "--path", str(tmp_path / "d"))
    env = "azureml:AzureML-sklearn-1.5@latest"
    spec = write(
        tmp_path / "pipeline.yml",
        "type: pipeline\n"
        "inputs:\n  raw: {type: uri_folder, path: 'azureml:pipe-in@latest'}\n"
        "jobs:\n"
        "  a:\n"
        "    command: cp ${{inputs.x}}/x.txt ${{outputs.out}}/x.txt\n"
        f"    environment: {env}\n"
        "    inputs: {x: '${{parent.inputs.raw}}'}\n"
        "    outputs: {out: {type: uri_folder, path: 'azureml://datastores/workspaceblobstore/paths/pipe/${{name}}/'}}\n"
        "  b:\n"
        "    command: cat ${{inputs.x}}/x.txt\n"
        f"    environment: {env}\n"
        "    inputs: {x: '${{parent.jobs.a.outputs.out}}'}\n",
    )
    proc = cli.run("job", "create", "--file", str(spec), "--stream")
    assert "Status: Completed" in proc.stdout, proc.stdout
    name = proc.stdout.split("RunId: ", 1)[1].split()[0]
    children = {j["display_name"]: j for j in cli.json("job", "list", "--parent-job-name", name)}
    a = children["a"]
    assert a["outputs"]["out"]["path"] == f"azureml://datastores/workspaceblobstore/paths/pipe/{a['name']}/"
    folder = cli.home / "workspaces/default/datastores/workspaceblobstore/pipe" / a["name"]
    assert (folder / "x.txt").read_text() == "from the asset\n"
    log = cli.home / "workspaces/default/jobs" / children["b"]["name"] / "artifacts/user_logs/std_log.txt"
    assert "from the asset" in log.read_text()


def test_the_sdk_verbs_over_the_local_client_agree_with_the_fast_path(ml_client, tmp_path, monkeypatch):
    """`amlemu data|datastore` as the az ml extension does them (azure-ai-ml's load_data, then ml_client.data),
    over the local client's operation groups: what AMLEMU_BACKEND=azure runs, minus Azure."""
    from argparse import Namespace

    from backends.sdk_verbs import SdkVerbs

    monkeypatch.chdir(tmp_path)
    write(tmp_path / "data" / "t.csv", "a\n1\n")
    spec = write(tmp_path / "d.yml", "name: t\ntype: uri_file\npath: ./data/t.csv\ntags: {a: b}\n")
    verbs, fast = SdkVerbs(ml_client, "local-sdk"), ml_client.verbs
    flags = dict(name=None, version=None, path=None, type=None, description=None, datastore=None, set=None)
    made = verbs.data_create(Namespace(file=str(spec), **flags))
    shown = fast.data_show(Namespace(name="t", version="1", label=None))
    assert made["path"] == shown["path"] and made["version"] == "1" and made["tags"] == {"a": "b"}
    listing = Namespace(name="t", include_archived=False, archived_only=False, max_results=None)
    assert [d["version"] for d in verbs.data_list(listing)] == ["1"]
    verbs.data_archive(Namespace(name="t", version="1", label=None))
    assert fast.data_list(listing) == []
    verbs.data_restore(Namespace(name="t", version="1", label=None))
    updated = verbs.data_update(Namespace(name="t", version="1", label=None, set=["tags.c=d", "description=x"]))
    assert updated["tags"] == {"a": "b", "c": "d"} and updated["description"] == "x"
    assert fast.data_show(Namespace(name="t", version=None, label="latest"))["description"] == "x"
    stores = verbs.datastore_list(Namespace(max_results=None))
    assert [s["name"] for s in stores] == [s["name"] for s in fast.datastore_list(Namespace(max_results=None))]
    assert verbs.datastore_show(Namespace(name="workspacefilestore"))["type"] == "azure_file"
