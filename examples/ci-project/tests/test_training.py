"""The training job, as Azure ML runs it: the job YAML, its conda environment, the metric it logs."""


def test_training_reaches_accuracy(aml_run_job, aml_register_model):
    job = aml_run_job("jobs/train.yml", set={"inputs.C": 0.5})  # waits; on failure the assertion shows the log tail
    assert job.metrics["accuracy"] > 0.9
    assert job.params["C"] == "0.5"

    model = aml_register_model(job.outputs_dir / "artifacts" / "outputs" / "model", name="iris")
    assert model.version == "1"  # a new name in this test's workspace (on Azure: "iris" with the run's prefix)
