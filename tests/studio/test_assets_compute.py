"""Models, Environments and Compute in a browser: a model from a job's output and its download, registered and
curated environments, an instance stopped and started from its buttons, a cluster's nodes and queue, an attached
Kubernetes cluster."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from azure.ai.ml import command
from azure.ai.ml.entities import AmlCompute, ComputeInstance, Environment, Model

from emulator.compute import service as computes
from emulator.jobs import lifecycle
from tests.conftest import wait_for

pytestmark = pytest.mark.browser

ENV = "azureml:AzureML-sklearn-1.5@latest"
TRAIN = "import os, sys, time\nos.makedirs('outputs', exist_ok=True)\nopen('outputs/model.txt', 'w').write('w')\n"
SLEEP = "import sys, time; time.sleep(float(sys.argv[1]))\n"
CONDA = "name: studio\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n    - six==1.16.0\n"


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("studio-src")
    (folder / "train.py").write_text(TRAIN)
    (folder / "sleep.py").write_text(SLEEP)
    (folder / "conda.yml").write_text(CONDA)
    return folder


@pytest.fixture(scope="module")
def assets(workspace, src):
    """A job's model registered with tags, and a registered conda environment."""
    job = command(code=str(src), command="python train.py", environment=ENV, name="train-job", experiment_name="m")
    workspace.jobs.create_or_update(job)
    assert lifecycle.wait(workspace.store, "train-job", timeout=60)["status"] == "Completed"
    workspace.models.create_or_update(
        Model(
            name="studio-model",
            path="azureml://jobs/train-job/outputs/artifacts/paths/outputs/",
            type="custom_model",
            tags={"stage": "dev"},
        )
    )
    workspace.environments.create_or_update(
        Environment(name="studio-env", conda_file=str(src / "conda.yml"), image="mcr.microsoft.com/azureml/base")
    )


def test_models_show_their_source_job_and_download(assets, studio_page):
    page = studio_page.open("/models")
    row = page.query_selector('tr[data-model="studio-model:1"]')
    assert "stage=dev" in row.inner_text() and "custom_model" in row.inner_text()
    assert row.query_selector('a:text("train-job")') is not None
    studio_page.shot("models")
    with page.expect_download() as download:
        row.query_selector('a:text("Download")').click()
    files = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())).namelist()
    assert any(name.endswith("model.txt") for name in files), files


def test_environments_curated_and_registered(assets, studio_page):
    page = studio_page.open("/environments")
    registered = page.inner_text('tr[data-environment="studio-env:1"]')
    assert "not built yet" in registered and "six==1.16.0" in registered
    assert "AzureML-sklearn-1.5" in page.inner_text('tr[data-environment="sklearn-1.5"]')
    studio_page.shot("environments")


@pytest.fixture(scope="module")
def computes_made(workspace):
    workspace.compute.begin_create_or_update(ComputeInstance(name="studio-box", size="Standard_DS3_v2")).result()
    workspace.compute.begin_create_or_update(
        AmlCompute(name="studio-cpu", size="Standard_DS3_v2", min_instances=1, max_instances=1)
    ).result()
    computes.create_or_update(workspace.store, {"type": "kubernetes", "name": "studio-k8s", "namespace": "ml"})


def test_stopping_an_instance_changes_its_state(workspace, computes_made, studio_page):
    page = studio_page.open("/compute")
    row = 'tr[data-compute="studio-box"]'
    assert page.inner_text(f"{row} .status") == "Running"
    page.click(f'{row} button[data-verb="stop"]')
    page.wait_for_selector(f'{row}[data-state="Stopped"]')
    assert page.inner_text(f"{row} .status") == "Stopped"
    assert computes.get(workspace.store, "studio-box")["state"] == "Stopped"
    studio_page.shot("compute-instance-stopped")
    page.reload()
    assert page.inner_text(f"{row} .status") == "Stopped"  # the engine's state, read again
    page.click(f'{row} button[data-verb="start"]')
    page.wait_for_selector(f'{row}[data-state="Running"]')
    assert computes.get(workspace.store, "studio-box")["state"] == "Running"


def test_a_clusters_nodes_and_queue_and_attached_kubernetes(workspace, src, computes_made, studio_page):
    for name in ("on-node", "in-queue"):
        job = command(code=str(src), command="python sleep.py 60", environment=ENV, name=name, compute="studio-cpu")
        workspace.jobs.create_or_update(job)
    try:
        wait_for(lambda: lifecycle.get(workspace.store, "on-node")["status"] == "Running", "the first job to run")
        page = studio_page.open("/compute")
        cluster = page.query_selector('[data-cluster="studio-cpu"]')
        assert "min 1 / max 1" in cluster.inner_text()
        assert cluster.query_selector('.nodes a:text("on-node")') is not None  # the node runs it
        assert cluster.query_selector('.queue a:text("in-queue")') is not None  # waiting for a node
        assert "ml" in page.inner_text('#kubernetes tr[data-compute="studio-k8s"]')
        studio_page.shot("compute")
    finally:
        for name in ("in-queue", "on-node"):
            lifecycle.cancel(workspace.store, name)
