"""Online endpoints and deployments: azure-ai-ml entities to YAML-shaped specs and back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from azure.ai.ml.entities import (
    CodeConfiguration,
    DefaultScaleSettings,
    Environment,
    KubernetesOnlineDeployment,
    KubernetesOnlineEndpoint,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    Model,
    OnlineRequestSettings,
    ProbeSettings,
    TargetUtilizationScaleSettings,
)

from backends.entities import entity_base_path, inline_environment, system_data


def endpoint_to_spec(endpoint: Any) -> dict[str, Any]:
    spec = dict(endpoint._to_dict())
    for key in ("scoring_uri", "openapi_uri", "provisioning_state", "id"):
        spec.pop(key, None)
    if spec.get("mirror_traffic") == {}:
        spec.pop("mirror_traffic")
    return spec


def record_to_endpoint(record: dict[str, Any]):
    common = dict(
        name=record["name"],
        auth_mode=record["auth_mode"],
        description=record.get("description"),
        tags=record.get("tags") or {},
        properties=record.get("properties") or {},
        traffic=dict(record.get("traffic") or {}),
        mirror_traffic=dict(record.get("mirror_traffic") or {}),
        scoring_uri=record.get("scoring_uri"),
        openapi_uri=record.get("openapi_uri"),
        provisioning_state=record.get("provisioning_state", "Succeeded"),
        location="local",
    )
    if record["kind"] == "kubernetes":
        entity = KubernetesOnlineEndpoint(compute=f"azureml:{record['compute']}", **common)
    else:
        entity = ManagedOnlineEndpoint(public_network_access=record.get("public_network_access"), **common)
    entity._system_data = system_data(record["created_at"], modified_at=record.get("updated_at"))
    return entity


def deployment_to_spec(deployment: Any) -> tuple[dict[str, Any], Path]:
    """The YAML-shaped spec of a deployment entity, and the folder its relative paths start from."""
    base = entity_base_path(deployment)
    model, environment = deployment.model, deployment.environment
    spec = dict(deployment._to_dict())
    if isinstance(model, Model):
        spec["model"] = (
            {"name": model.name, "version": str(model.version)}
            if model.version and model.name and not model.path
            else {k: v for k, v in model._to_dict().items() if k in ("name", "version", "path", "type")}
        )
        if model.version and model.name and model.path:
            spec["model"] = {"name": model.name, "version": str(model.version), "path": str(model.path)}
    if isinstance(environment, Environment):
        if (
            environment.name
            and environment.version
            and not (environment.image or environment.build or environment.conda_file)
        ):
            spec["environment"] = f"azureml:{environment.name}:{environment.version}"
        else:
            spec["environment"] = inline_environment(environment)
    code = deployment.code_configuration
    if code is not None:
        spec["code_configuration"] = {
            "code": str((base / str(code.code)).resolve()) if code.code else None,
            "scoring_script": code.scoring_script,
        }
    for key in ("provisioning_state", "id", "app_insights_enabled", "scoring_uri"):
        spec.pop(key, None)
    if not spec.get("environment_variables"):
        spec.pop("environment_variables", None)
    return spec, base


def record_to_deployment(record: dict[str, Any]):
    model = record.get("model")
    scale = dict(record.get("scale_settings") or {"type": "default"})
    scale_type = scale.pop("type")
    common = dict(
        name=record["deployment_name"],
        endpoint_name=record["endpoint_name"],
        description=record.get("description"),
        tags=record.get("tags") or {},
        model=f"azureml:{model['name']}:{model['version']}" if model else None,
        code_configuration=CodeConfiguration(code=record["code"], scoring_script=record["scoring_script"])
        if record.get("code")
        else None,
        environment=record.get("environment") if isinstance(record.get("environment"), str) else None,
        environment_variables=record.get("environment_variables") or {},
        instance_count=record["instance_count"],
        instance_type=record.get("instance_type"),
        request_settings=OnlineRequestSettings(**record["request_settings"]),
        liveness_probe=ProbeSettings(**record["liveness_probe"]),
        readiness_probe=ProbeSettings(**record["readiness_probe"]),
        scale_settings=TargetUtilizationScaleSettings(**scale)
        if scale_type == "target_utilization"
        else DefaultScaleSettings(),
        provisioning_state=record["provisioning_state"],
    )
    cls = KubernetesOnlineDeployment if record["type"] == "kubernetes" else ManagedOnlineDeployment
    entity = cls(**common)
    entity._system_data = system_data(record["created_at"], modified_at=record.get("updated_at"))
    return entity
