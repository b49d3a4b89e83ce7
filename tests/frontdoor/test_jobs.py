"""Jobs through the front door: the real ``MLClient`` creates, streams, gets, lists and cancels them, and a job
started there reaches the front door itself with the managed identity Azure gives a job."""

from __future__ import annotations

import sys
import textwrap

import pytest
import requests

CURATED = "AzureML-sklearn-1.5@latest"


def _command(**kwargs):
    from azure.ai.ml import command

    return command(environment=CURATED, **kwargs)


def test_command_job_streams_completes_and_is_listed(sdk, capsys):
    job = sdk.jobs.create_or_update(_command(command="echo hello-front-door", experiment_name="front-door"))
    assert job.status in ("NotStarted", "Queued", "Preparing", "Running", "Completed")
    assert job.id.startswith("/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/my-rg/")

    sdk.jobs.stream(job.name)
    out = capsys.readouterr().out
    assert "hello-front-door" in out and f"RunId: {job.name}" in out and "Execution Summary" in out

    done = sdk.jobs.get(job.name)
    assert done.status == "Completed"
    assert done.experiment_name == "front-door" and done.environment == f"azureml:{CURATED}"
    assert done.services["Tracking"].endpoint.startswith("http://127.0.0.1:")
    assert job.name in [j.name for j in sdk.jobs.list()]
    assert job.name not in [j.name for j in sdk.jobs.list(list_view_type="ArchivedOnly")]


def test_job_with_code(sdk, tmp_path, capsys):
    """The SDK uploads the folder as a code asset; the job runs its snapshot and answers the asset's id."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("import sys\nprint('trained-with', sys.argv[1])\n")
    job = sdk.jobs.create_or_update(
        _command(code=str(tmp_path / "src"), command="python train.py ${{inputs.c}}", inputs={"c": 0.5})
    )
    sdk.jobs.stream(job.name)
    assert "trained-with 0.5" in capsys.readouterr().out
    done = sdk.jobs.get(job.name)
    assert done.status == "Completed"
    workspace = f"/workspaces/{sdk.workspace_name}/codes/"
    assert workspace in done.code and done.code.startswith("/subscriptions/00000000-1111-2222-3333-444444444444/")


def test_failing_job_stream_raises_with_the_log_tail(sdk, capsys):
    from azure.ai.ml.exceptions import JobException

    job = sdk.jobs.create_or_update(_command(command="python -c \"import sys; print('about-to-fail'); sys.exit(3)\""))
    with pytest.raises(JobException) as err:
        sdk.jobs.stream(job.name)
    assert "about-to-fail" in str(err.value)  # the error names the log's last lines
    assert "about-to-fail" in capsys.readouterr().out  # and the stream printed them
    assert sdk.jobs.get(job.name).status == "Failed"


def test_sweep_job_and_its_trials(sdk, capsys):
    from azure.ai.ml import command
    from azure.ai.ml.sweep import Choice

    trial = command(
        command="python -c 'import mlflow; mlflow.log_metric(\"acc\", ${{inputs.c}})'",
        inputs={"c": 0.5},
        environment=CURATED,
    )
    sweep = trial(c=Choice([0.1, 0.2])).sweep(sampling_algorithm="grid", primary_metric="acc", goal="maximize")
    sweep.set_limits(max_total_trials=2, max_concurrent_trials=2)
    job = sdk.jobs.create_or_update(sweep)
    sdk.jobs.stream(job.name)
    assert "sweep Completed" in capsys.readouterr().out
    assert sdk.jobs.get(job.name).status == "Completed"
    trials = list(sdk.jobs.list(parent_job_name=job.name))  # run history's children
    assert sorted(t.name for t in trials) == [f"{job.name}_0", f"{job.name}_1"]
    assert {t.status for t in trials} == {"Completed"}
    assert job.name in [j.name for j in sdk.jobs.list(job_type="Sweep")]


def test_unknown_job_is_not_found_with_amlemus_message(sdk):
    from azure.core.exceptions import ResourceNotFoundError

    with pytest.raises(ResourceNotFoundError) as err:
        sdk.jobs.get("no_such_job_here")
    assert "no_such_job_here" in str(err.value) and "not found" in str(err.value)


def test_cancel_a_running_job(sdk):
    job = sdk.jobs.create_or_update(_command(command='python -c "import time; time.sleep(600)"'))
    sdk.jobs.begin_cancel(job.name).result()
    assert sdk.jobs.get(job.name).status == "Canceled"


def test_list_filters_by_tag(sdk):
    tagged = sdk.jobs.create_or_update(_command(command="echo tagged", tags={"team": "front-door"}))
    other = sdk.jobs.create_or_update(_command(command="echo untagged"))
    names = [j.name for j in sdk.jobs.list(tag="team")]
    assert tagged.name in names and other.name not in names


def test_a_job_calls_azure_ml_with_its_managed_identity(sdk, capsys):
    """The job builds ``MLClient(DefaultAzureCredential(), ...)`` from the variables Azure gives a job, once with
    App Service's protocol (IDENTITY_ENDPOINT) and once with Azure ML compute's (MSI_ENDPOINT + MSI_SECRET)."""
    script = textwrap.dedent(
        """
        import os
        from azure.ai.ml import MLClient
        from azure.identity import DefaultAzureCredential

        def workspace():
            client = MLClient(
                DefaultAzureCredential(),
                os.environ["AZUREML_ARM_SUBSCRIPTION"],
                os.environ["AZUREML_ARM_RESOURCEGROUP"],
                os.environ["AZUREML_ARM_WORKSPACE_NAME"],
            )
            return client.workspaces.get().name

        print("identity-endpoint:", workspace())
        os.environ.pop("IDENTITY_ENDPOINT")
        os.environ.pop("IDENTITY_HEADER")
        print("msi-endpoint:", workspace(), os.environ["AZUREML_RUN_ID"])
        """
    )
    # amlemu's own interpreter has azure-ai-ml; the curated environment's does not
    job = sdk.jobs.create_or_update(_command(command=f"{sys.executable} -c '{script}'"))
    sdk.jobs.stream(job.name)
    out = capsys.readouterr().out
    assert f"identity-endpoint: {sdk.workspace_name}" in out
    assert f"msi-endpoint: {sdk.workspace_name} {job.name}" in out
    # the identity's secret is in the job's processes, never in the job the service shows
    assert not {"MSI_SECRET", "IDENTITY_HEADER"} & set(sdk.jobs.get(job.name).environment_variables)


def test_job_metrics_land_in_the_workspace_runs(sdk, front_door, monkeypatch):
    """The engine's MLFLOW_TRACKING_URI (the workspace's file store) is the job's: its metrics are the run's."""
    import mlflow

    from emulator.tracking import filestore

    for key, value in filestore.TRACKING_ENV.items():  # to read the store directly, as the engine does
        monkeypatch.setenv(key, value)

    log = 'import mlflow; mlflow.log_metric("accuracy", 0.75)'
    job = sdk.jobs.create_or_update(_command(command=f"python -c '{log}'", experiment_name="metrics"))
    assert sdk.jobs.stream(job.name) is None
    store = front_door.home / "workspaces" / sdk.workspace_name / "mlruns"
    run = mlflow.MlflowClient(tracking_uri=store.as_uri()).get_run(job.name)
    assert run.data.metrics == {"accuracy": 0.75}


def test_log_urls_are_signed(sdk, front_door, front_env):
    from azure.identity import DefaultAzureCredential

    job = sdk.jobs.create_or_update(_command(command="echo signed-log"))
    sdk.jobs.stream(job.name)
    base = f"https://127.0.0.1:{front_door.port + 1}"
    token = DefaultAzureCredential().get_token(f"{base}/.default").token
    url = (
        f"{base}/history/v1.0/subscriptions/s/resourceGroups/r/providers/Microsoft.MachineLearningServices"
        f"/workspaces/{sdk.workspace_name}/runs/{job.name}/details"
    )
    verify = front_env["REQUESTS_CA_BUNDLE"]
    logs = requests.get(url, headers={"Authorization": f"Bearer {token}"}, verify=verify, timeout=30).json()
    log_url = logs["logFiles"]["user_logs/std_log.txt"]
    assert "signed-log" in requests.get(log_url, verify=verify, timeout=30).text  # no token needed
    tampered = log_url.replace("std_log.txt", "std_log_process_0.txt")
    assert requests.get(tampered, verify=verify, timeout=30).status_code == 403
    head, _, sig = log_url.rpartition("sig=")
    forged = head + "sig=" + ("A" if sig[0] != "A" else "B") + sig[1:]
    assert requests.get(forged, verify=verify, timeout=30).status_code == 403
