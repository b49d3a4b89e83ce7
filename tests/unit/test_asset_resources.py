"""A model or environment version's ARM resource JSON reads back, through azure-ai-ml's own REST models,
as the entity its ``az ml`` view and ``ml_client.<assets>.get`` describe."""

from __future__ import annotations

import json

from emulator.environments import registry as environments
from emulator.environments.views import environment_resource, environment_view
from emulator.models import registry as models
from emulator.models.views import model_resource, model_view


def test_model_resource_reads_back_as_the_view(store, tmp_path):
    from azure.ai.ml._restclient.arm_ml_service.models import ModelVersion
    from azure.ai.ml.entities import Model

    (tmp_path / "model.pkl").write_bytes(b"x")
    record = models.create_or_update(
        store,
        {
            "name": "iris",
            "version": "3",
            "path": "model.pkl",
            "description": "d",
            "tags": {"a": "b"},
            "stage": "Production",
        },
        tmp_path,
    )
    view, resource = model_view(store, record), model_resource(store, record)
    entity = Model._from_rest_object(ModelVersion(json.loads(json.dumps(resource))))
    assert (entity.name, entity.version, entity.type) == ("iris", "3", view["type"])
    assert str(entity.path) == str(models.files(store, record))  # as ml_client.models.get gives it
    assert (entity.description, entity.tags, entity.stage) == ("d", {"a": "b"}, "Production")
    assert entity.creation_context.created_by == view["creation_context"]["created_by"]
    assert "azureml:" + entity.id == view["id"]


def test_environment_resource_reads_back_as_the_view(store, tmp_path):
    from azure.ai.ml._restclient.arm_ml_service.models import EnvironmentVersion
    from azure.ai.ml.entities import Environment

    (tmp_path / "conda.yml").write_text("name: e\ndependencies:\n  - python=3.11\n  - pip:\n    - numpy\n")
    record = environments.create(
        store,
        {"name": "env", "version": "2", "image": "python:3.11-slim", "conda_file": "conda.yml", "tags": {"t": "1"}},
        tmp_path,
    )
    view, resource = environment_view(store, record), environment_resource(store, record)
    entity = Environment._from_rest_object(EnvironmentVersion(json.loads(json.dumps(resource))))
    assert (entity.name, entity.version, entity.image, entity.tags) == ("env", "2", view["image"], {"t": "1"})
    assert entity.conda_file == view["conda_file"]
    assert "azureml:" + entity.id == view["id"]
