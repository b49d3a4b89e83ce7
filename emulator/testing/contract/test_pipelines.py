"""Pipeline jobs: two steps built with the ``@pipeline`` DSL, the second bound to the first's output.

The SDK refuses a pipeline without a compute (``Compute not set``): the steps run on a cluster the test makes.
"""

from __future__ import annotations

import pytest
from azure.ai.ml import Input, Output, command
from azure.ai.ml.dsl import pipeline
from azure.ai.ml.entities import AmlCompute

from emulator.testing.contract import CURATED


@pytest.fixture
def cluster(ml_client, unique_name):
    """A compute cluster for the steps (no node until a step asks), deleted afterwards."""
    name = unique_name("compute", "steps")
    ml_client.compute.begin_create_or_update(AmlCompute(name=name, min_instances=0, max_instances=2)).result()
    yield name
    ml_client.compute.begin_delete(name).result()


def test_two_steps_with_a_binding(ml_client, cluster, tmp_path):
    make = command(
        command="echo 7 > ${{outputs.number}}/n.txt",
        outputs={"number": Output(type="uri_folder")},
        environment=CURATED,
    )
    multiply = command(
        command="echo $(( $(cat ${{inputs.number}}/n.txt) * ${{inputs.factor}} )) > ${{outputs.result}}/n.txt",
        inputs={"number": Input(type="uri_folder"), "factor": 2},
        outputs={"result": Output(type="uri_folder")},
        environment=CURATED,
    )

    @pipeline(experiment_name="contract-pipeline", default_compute=cluster)
    def make_and_multiply(factor):
        made = make()
        multiplied = multiply(number=made.outputs.number, factor=factor)
        return {"result": multiplied.outputs.result}

    job = ml_client.jobs.create_or_update(make_and_multiply(factor=3))
    assert job.type == "pipeline"
    ml_client.jobs.stream(job.name)
    assert ml_client.jobs.get(job.name).status == "Completed"
    steps = list(ml_client.jobs.list(parent_job_name=job.name))
    assert len(steps) == 2 and {s.status for s in steps} == {"Completed"}
    ml_client.jobs.download(job.name, output_name="result", download_path=str(tmp_path))
    assert (tmp_path / "named-outputs" / "result" / "n.txt").read_text().strip() == "21"
