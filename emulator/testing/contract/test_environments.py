"""Environments: versions from a Docker build context and from an image with a conda file, labels, list."""

from __future__ import annotations

from azure.ai.ml.entities import BuildContext, Environment


def test_environments(ml_client, tmp_path, unique_name):
    name = unique_name("environment", "ctx-env")
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM python:3.11-slim\n")
    built = Environment(name=name, build=BuildContext(path=str(tmp_path / "ctx")))
    env = ml_client.environments.create_or_update(built)
    assert env.version == "1"
    # the local backend keeps the folder; Azure (and the front door) answer the storage URL the SDK uploaded it to
    assert (
        env.build.path == str(tmp_path / "ctx") if ml_client.name == "local" else env.build.path.startswith("https://")
    )
    env2 = ml_client.environments.create_or_update(
        Environment(
            name=name,
            image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04",
            conda_file={"dependencies": ["python=3.11", {"pip": ["six"]}]},
        )
    )
    assert env2.version == "2" and env2.conda_file["dependencies"][1] == {"pip": ["six"]}
    assert ml_client.environments.get(name, label="latest").version == "2"
    assert [e.version for e in ml_client.environments.list(name=name)] == ["2", "1"]
