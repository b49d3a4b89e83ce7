"""Online endpoints and deployments as records in the workspace store, with Azure ML's rules.

Specs are YAML-shaped dicts (what ``az ml online-endpoint create --file`` reads
and what the SDK entities' ``_to_dict()`` give). Everything is validated before
the first write, so bad input leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator import config, naming
from emulator.endpoints import keys
from emulator.errors import NotEmulated, ResourceExists, ResourceNotFound, ValidationError
from emulator.jobs import snapshot as snapshots
from emulator.runtime.base import check_runtime
from emulator.store import WorkspaceStore

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import ComputeRecord, DeploymentRecord, EndpointRecord, ModelRef

ENDPOINT = "online-endpoint"
DEPLOYMENT = "online-deployment"
_V = "1"  # endpoints and deployments are named, not versioned
AUTH_MODES = ("key", "aml_token")
#: Azure ML's defaults for managed online deployments
REQUEST_DEFAULTS = {"request_timeout_ms": 5000, "max_concurrent_requests_per_instance": 1, "max_queue_wait_ms": 500}
PROBE_DEFAULTS = {"initial_delay": 10, "period": 10, "timeout": 2, "success_threshold": 1, "failure_threshold": 30}
PROBE_MINIMUMS = {
    "initial_delay": 0,
    "period": 1,
    "timeout": 1,
    "success_threshold": 1,
    "failure_threshold": 1,
}  # as Kubernetes' probes, which Azure's become
SCALE_DEFAULTS = {"polling_interval": 1, "target_utilization_percentage": 70}
ENDPOINT_FIELDS = {
    "$schema",
    "name",
    "description",
    "tags",
    "properties",
    "auth_mode",
    "traffic",
    "mirror_traffic",
    "public_network_access",
    "compute",
    "kind",
    "identity",
    "location",
}
DEPLOYMENT_FIELDS = {
    "$schema",
    "name",
    "endpoint_name",
    "description",
    "tags",
    "properties",
    "model",
    "code_configuration",
    "environment",
    "environment_variables",
    "instance_count",
    "instance_type",
    "request_settings",
    "liveness_probe",
    "readiness_probe",
    "scale_settings",
    "app_insights_enabled",
    "egress_public_network_access",
    "type",
    "resources",
    "data_collector",
    "code_path",
    "scoring_script",
}


def _unknown(spec: dict, allowed: set[str], what: str) -> None:
    extra = sorted(set(spec) - allowed)
    if extra:
        raise ValidationError(
            f"Unknown field(s) in the {what}: {', '.join(extra)}. Allowed: {', '.join(sorted(allowed - {'$schema'}))}."
        )


# -- endpoints ------------------------------------------------------------------------------
def get_endpoint(store: WorkspaceStore, name: str) -> EndpointRecord:
    try:
        return store.get_asset(ENDPOINT, name, _V)
    except ResourceNotFound:
        raise ResourceNotFound(
            f"Online endpoint '{name}' not found in workspace '{store.name}'. "
            "List them with `amlemu online-endpoint list`."
        ) from None


def list_endpoints(store: WorkspaceStore) -> list[EndpointRecord]:
    return store.list_assets(ENDPOINT)


def _check_traffic(field: str, traffic: Any, deployments: set[str], *, mirror: bool) -> dict[str, int]:
    if traffic in (None, ""):
        return {}
    if not isinstance(traffic, dict):
        raise ValidationError(f"'{field}' must map deployment names to percentages, e.g. {{blue: 90, green: 10}}.")
    out: dict[str, int] = {}
    for name, value in traffic.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)) or not str(value).strip().isdigit():
            raise ValidationError(f"'{field}' for deployment '{name}' must be a whole percentage 0-100, got {value!r}.")
        value = int(value)
        if not 0 <= value <= 100:
            raise ValidationError(f"'{field}' for deployment '{name}' must be 0-100, got {value}.")
        if name not in deployments:
            known = ", ".join(sorted(deployments)) or "none yet"
            raise ValidationError(
                f"'{field}' names deployment '{name}', which this endpoint does not have "
                f"(deployments: {known}). Create it first, then route traffic to it."
            )
        out[name] = value
    total = sum(out.values())
    if mirror:
        live = {k: v for k, v in out.items() if v}
        if len(live) > 1:
            raise ValidationError("mirror_traffic can copy traffic to one deployment only.")
        if total > 50:
            raise ValidationError(f"mirror_traffic is at most 50 percent; got {total}.")
    elif out and total not in (0, 100):
        detail = " + ".join(f"{k}={v}" for k, v in out.items())
        raise ValidationError(
            f"Traffic percentages must sum to 100 (or all be 0); {detail} = {total}. "
            'Fix the split, e.g. --traffic "blue=90 green=10".'
        )
    return out


def create_or_update_endpoint(
    store: WorkspaceStore, spec: dict[str, Any], local: bool = False
) -> tuple[EndpointRecord, bool]:
    """Validate and write an endpoint. Returns the record and whether it is new.

    A ``local`` endpoint (azure-ai-ml's ``local=True``) keeps no traffic rules: its one deployment serves
    every request, without keys (see :mod:`emulator.endpoints.local_mode`)."""
    spec = {k: v for k, v in spec.items() if v is not None}
    _unknown(spec, ENDPOINT_FIELDS, "online endpoint")
    name = naming.check("endpoint", spec.get("name"))
    try:
        existing = get_endpoint(store, name)
    except ResourceNotFound:
        existing = None
        _refuse_case_twin(store, name)
    if existing and bool(existing.get("local")) != local:
        raise ResourceExists(
            f"Endpoint '{name}' is a {'local' if existing.get('local') else 'workspace'} endpoint (created "
            f"{'with' if existing.get('local') else 'without'} local=True). On Azure a local endpoint and a "
            "workspace endpoint may share a name; amlemu keeps one endpoint per name. Use another name, or "
            f"delete '{name}' first."
        )
    previous: Mapping[str, Any] = existing or {}
    auth_mode = str(spec.get("auth_mode") or previous.get("auth_mode") or "key").lower()
    if auth_mode == "aad_token":
        raise NotEmulated("auth_mode: aad_token", "Use auth_mode: key or aml_token locally.")
    if auth_mode not in AUTH_MODES:
        raise ValidationError(f"auth_mode '{auth_mode}' is unknown; use one of: {', '.join(AUTH_MODES)}.")
    if existing and existing["auth_mode"] != auth_mode:
        raise ValidationError(
            f"auth_mode of endpoint '{name}' is '{existing['auth_mode']}' and cannot be "
            "changed; create a new endpoint instead."
        )
    access = str(spec.get("public_network_access") or previous.get("public_network_access") or "enabled").lower()
    if access not in ("enabled", "disabled"):
        raise ValidationError(f"public_network_access must be 'enabled' or 'disabled', got '{access}'.")
    compute = spec.get("compute") or previous.get("compute")
    kind = "kubernetes" if compute else "managed"
    if existing and existing["kind"] == "managed" and compute:
        raise ValidationError(
            f"Endpoint '{name}' is a managed online endpoint; it cannot move to compute "
            f"'{str(compute).removeprefix('azureml:')}'. Create a KubernetesOnlineEndpoint "
            "under a new name for the Kubernetes compute."
        )
    if compute:
        compute = str(compute).removeprefix("azureml:")
        _kubernetes_compute(store, compute)
    if existing and existing.get("compute") and compute != existing["compute"]:
        raise ValidationError(f"Endpoint '{name}' runs on compute '{existing['compute']}'; its compute cannot change.")
    deployments = {d["deployment_name"] for d in list_deployments(store, name)} if existing else set()
    if local:  # azure-ai-ml's local endpoints take no traffic rules: their one deployment gets every request
        spec = {k: v for k, v in spec.items() if k not in ("traffic", "mirror_traffic")}
    traffic = _check_traffic("traffic", spec.get("traffic", previous.get("traffic")), deployments, mirror=False)
    mirror = _check_traffic(
        "mirror_traffic", spec.get("mirror_traffic", previous.get("mirror_traffic")), deployments, mirror=True
    )
    for dep, pct in mirror.items():
        if pct and traffic.get(dep):
            raise ValidationError(
                f"Deployment '{dep}' receives live traffic; mirror traffic must go to a deployment that gets none."
            )
    body = dict(previous)
    for key in ("name", "version", "created_at", "updated_at"):
        body.pop(key, None)
    body.update(
        kind=kind,
        compute=compute,
        auth_mode=auth_mode,
        traffic=traffic,
        mirror_traffic=mirror,
        public_network_access=access,
        description=spec.get("description", body.get("description")),
        tags=dict(spec.get("tags") or body.get("tags") or {}),
        properties=dict(spec.get("properties") or body.get("properties") or {}),
    )
    if local:
        body["local"] = True
    if not existing:
        with socket.socket() as s:  # a port kept for the endpoint's life: its URI never changes
            s.bind(("127.0.0.1", 0))
            body["port"] = s.getsockname()[1]
        body["credentials"] = keys.new_credentials()
        body["provisioning_state"] = "Succeeded"
    store.put_asset(ENDPOINT, name, _V, body)
    return get_endpoint(store, name), existing is None


def delete_endpoint_record(store: WorkspaceStore, name: str) -> None:
    with store.transaction() as db:
        db.execute("DELETE FROM assets WHERE kind = ? AND name = ?", (ENDPOINT, name))
        # an exact prefix: LIKE ignores ASCII case and reads '_' and '%' as wildcards
        prefix = f"{name}/"
        db.execute("DELETE FROM assets WHERE kind = ? AND substr(name, 1, ?) = ?", (DEPLOYMENT, len(prefix), prefix))
    shutil.rmtree(endpoint_dir(store, name), ignore_errors=True)


def set_credentials(store: WorkspaceStore, name: str, key_type: str) -> None:
    if key_type not in keys.KEY_TYPES:
        raise ValidationError(f"key_type must be 'primary' or 'secondary', got '{key_type}'.")
    endpoint = get_endpoint(store, name)
    if endpoint["auth_mode"] != "key":
        raise ValidationError(
            f"Endpoint '{name}' uses auth_mode '{endpoint['auth_mode']}': keys are "
            "regenerated only for auth_mode key; tokens expire on their own."
        )
    body = {k: v for k, v in endpoint.items() if k not in ("name", "version", "created_at", "updated_at")}
    body["credentials"] = {**endpoint["credentials"], key_type: keys.new_key()}
    store.put_asset(ENDPOINT, name, _V, body)


def scoring_uri(endpoint: EndpointRecord) -> str:
    return f"http://127.0.0.1:{endpoint['port']}/score"


def endpoint_dir(store: WorkspaceStore, name: str) -> Path:
    return naming.confined_join(store.root, "endpoints", name)


def _kubernetes_compute(store: WorkspaceStore, name: str) -> ComputeRecord:
    try:
        compute = store.get_asset("compute", name, _V)
    except ResourceNotFound:
        raise ResourceNotFound(
            f"Compute '{name}' not found in workspace '{store.name}'. Attach an inference "
            "cluster first: `amlemu compute attach --type Kubernetes --name "
            f"{name}` (or ml_client.compute.begin_create_or_update(KubernetesCompute(...)))."
        ) from None
    if compute.get("type") != "kubernetes":
        raise ValidationError(
            f"Compute '{name}' is a {compute.get('type')}; online endpoints on a compute need "
            "a Kubernetes inference cluster (type: kubernetes)."
        )
    return compute


def _refuse_case_twin(store: WorkspaceStore, name: str) -> None:
    """Names that differ only in case name one endpoint in Azure (ARM resource names and the scoring URI's
    host name are case-insensitive), so a new endpoint may not sit beside its twin; lookups stay exact."""
    rows = store.query(
        "SELECT name FROM assets WHERE kind = ? AND lower(name) = lower(?) AND name != ?", (ENDPOINT, name, name)
    )
    if rows:
        twin = rows[0]["name"]
        raise ResourceExists(
            f"Endpoint '{name}' differs only in case from the existing '{twin}': Azure ML names "
            f"are case-insensitive, so they would name the same endpoint. Use '{twin}' "
            f"(`amlemu online-endpoint show --name {twin}`) or another name."
        )


# -- deployments -------------------------------------------------------------------------------
def _key(endpoint: str, deployment: str) -> str:
    return f"{endpoint}/{deployment}"


def get_deployment(store: WorkspaceStore, endpoint: str, name: str) -> DeploymentRecord:
    get_endpoint(store, endpoint)
    try:
        return store.get_asset(DEPLOYMENT, _key(endpoint, name), _V)
    except ResourceNotFound:
        raise ResourceNotFound(
            f"Deployment '{name}' not found under endpoint '{endpoint}'. List them with "
            f"`amlemu online-deployment list --endpoint-name {endpoint}`."
        ) from None


def list_deployments(store: WorkspaceStore, endpoint: str) -> list[DeploymentRecord]:
    mine = [d for d in store.list_assets(DEPLOYMENT) if d["endpoint_name"] == endpoint]  # one query, not N+1
    return sorted(mine, key=lambda d: d["created_at"])


def deployment_dir(store: WorkspaceStore, endpoint: str, name: str) -> Path:
    return naming.confined_join(endpoint_dir(store, endpoint), "deployments", name)


def _positive_int(value: Any, field: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().lstrip("-").isdigit():
        raise ValidationError(f"'{field}' must be a whole number, got {value!r}.")
    value = int(value)
    if value < minimum:
        raise ValidationError(f"'{field}' must be at least {minimum}, got {value}.")
    return value


def _settings(spec: dict, field: str, defaults: dict[str, int], minimum: int | dict[str, int] = 0) -> dict[str, int]:
    """``spec[field]`` with ``defaults`` filled in; ``minimum``: one for every setting, or per setting."""
    least = minimum if isinstance(minimum, dict) else dict.fromkeys(defaults, minimum)
    given = spec.get(field) or {}
    if not isinstance(given, dict):
        raise ValidationError(f"'{field}' must be a mapping of {', '.join(defaults)}.")
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValidationError(
            f"Unknown setting(s) in '{field}': {', '.join(sorted(unknown))}. Allowed: {', '.join(defaults)}."
        )
    return {
        k: _positive_int(given[k], f"{field}.{k}", least[k]) if given.get(k) is not None else v
        for k, v in defaults.items()
    }


def _scale_settings(spec: dict, kind: str) -> dict[str, Any]:
    given = dict(spec.get("scale_settings") or {})
    scale_type = str(given.pop("type", "default")).lower().replace("targetutilization", "target_utilization")
    if scale_type == "default":
        if given:
            raise ValidationError(f"scale_settings of type default take no settings; got {', '.join(given)}.")
        return {"type": "default"}
    if scale_type != "target_utilization":
        raise ValidationError(f"scale_settings type '{scale_type}' is unknown; use default or target_utilization.")
    if kind != "kubernetes":
        raise ValidationError(
            "target_utilization scale settings apply to Kubernetes online deployments; "
            "managed deployments scale with instance_count."
        )
    allowed = {"min_instances", "max_instances", "polling_interval", "target_utilization_percentage"}
    unknown = set(given) - allowed
    if unknown:
        raise ValidationError(
            f"Unknown scale_settings: {', '.join(sorted(unknown))}. Allowed: {', '.join(sorted(allowed))}."
        )
    out = {
        "type": "target_utilization",
        "min_instances": _positive_int(given.get("min_instances", 1), "scale_settings.min_instances"),
        "max_instances": _positive_int(given.get("max_instances", 1), "scale_settings.max_instances"),
        "polling_interval": _positive_int(
            given.get("polling_interval", SCALE_DEFAULTS["polling_interval"]), "scale_settings.polling_interval"
        ),
        "target_utilization_percentage": _positive_int(
            given.get("target_utilization_percentage", SCALE_DEFAULTS["target_utilization_percentage"]),
            "scale_settings.target_utilization_percentage",
        ),
    }
    if out["min_instances"] > out["max_instances"]:
        raise ValidationError(
            f"scale_settings.min_instances ({out['min_instances']}) is above max_instances ({out['max_instances']})."
        )
    if out["target_utilization_percentage"] > 100:
        raise ValidationError("scale_settings.target_utilization_percentage must be 1-100.")
    return out


def _model(store: WorkspaceStore, model: Any, base_path: Path, endpoint: str, name: str) -> ModelRef | None:
    # only deployment writes need the registries (~6 ms at start; the endpoint host imports this module)
    from emulator.models import registry as models

    if model in (None, ""):
        return None
    if isinstance(model, str):
        ref = model.removeprefix("azureml:")
        if ref.startswith("//registries/"):
            raise NotEmulated(f"model from a registry ({model})", "Register the model in the workspace first.")
        if "@" in ref:
            mname, label = ref.split("@", 1)
            if label != "latest":
                raise ValidationError(f"Model label '{label}' is not supported; use '{mname}@latest' or a version.")
            record = store.get_asset(models.KIND, mname, None)
        else:
            mname, _, version = ref.partition(":")
            if not version:
                raise ValidationError(
                    f"Model reference '{model}' needs a version: azureml:{mname}:<version> or azureml:{mname}@latest."
                )
            record = store.get_asset(models.KIND, mname, version)
        return {"name": record["name"], "version": record["version"]}
    if isinstance(model, dict):
        mname, version = model.get("name"), model.get("version")
        if mname and version:
            try:
                record = store.get_asset(models.KIND, mname, str(version))
                return {"name": record["name"], "version": record["version"]}
            except ResourceNotFound:
                if not model.get("path"):
                    raise
        if model.get("path"):  # an inline model: registered for the deployment, as Azure does
            spec = {
                "name": mname or f"{endpoint}-{name}-model",
                "path": model["path"],
                "type": model.get("type") or "custom_model",
                "version": version,
            }
            record = models.create_or_update(store, spec, base_path)
            return {"name": record["name"], "version": record["version"]}
    raise ValidationError(
        f"Deployment model must be 'azureml:<name>:<version>', a registered model, or a local path; got {model!r}."
    )


def _code(spec: dict, base_path: Path) -> tuple[Path | None, str | None]:
    code_conf = spec.get("code_configuration") or {}
    code = code_conf.get("code") or spec.get("code_path")
    script = code_conf.get("scoring_script") or spec.get("scoring_script")
    if not code and not script:
        return None, None
    if not code or not script:
        raise ValidationError(
            "code_configuration needs both 'code' (the folder) and 'scoring_script' (the file in it, e.g. score.py)."
        )
    code = str(code).removeprefix("file:")
    if code.startswith(("azureml:", "http://", "https://")):
        raise NotEmulated(f"code from '{code}'", "Point code_configuration.code at a local folder.")
    folder = (base_path / code).resolve()
    if not folder.is_dir():
        raise ValidationError(
            f"code_configuration.code '{code}' is not a folder (looked at {folder}). "
            "Fix the path; it is relative to the YAML file."
        )
    if not (folder / script).is_file():
        raise ValidationError(
            f"Scoring script '{script}' not found in {folder}. Fix "
            "code_configuration.scoring_script (a path inside the code folder)."
        )
    snapshots.plan(folder)  # refused before anything is read or copied: the filesystem root, home, over the limits
    return folder, str(script)


def mlflow_model_folder(store: WorkspaceStore, model: ModelRef | None) -> Path | None:
    """The registered folder of ``model`` when it is an ``mlflow_model`` (served without code by the
    generated MLflow scoring script), else None."""
    # the registries cost start-up time (~6 ms) where no MLflow model is served
    from emulator.models import registry as models

    if not model:
        return None
    try:
        record = store.get_asset(models.KIND, model["name"], model["version"])
    except ResourceNotFound:
        return None
    return models.files(store, record) if record.get("type") == "mlflow_model" else None


def _mlflow_conda_file(folder: Path, model: ModelRef, needed: bool) -> Path | None:
    """The conda file of an MLflow model's ``python_function`` flavor (None when not ``needed``: the
    deployment names an environment); refuses a model without that flavor, or without the file if needed."""
    import yaml  # only deployment writes read MLmodel files

    which = f"MLflow model '{model['name']}:{model['version']}'"
    fix = (
        "Save the model with mlflow.<flavor>.save_model or log_model (they write MLmodel and conda.yaml) and "
        "register that folder, or deploy it with code_configuration and an environment."
    )
    mlmodel = folder / "MLmodel"
    if not mlmodel.is_file():
        raise ValidationError(f"{which} has no MLmodel file in its folder ({folder}), so it cannot be served. {fix}")
    try:
        flavors = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors") or {}
    except (yaml.YAMLError, AttributeError) as exc:
        raise ValidationError(f"{which}: its MLmodel file is not a YAML mapping ({exc}). {fix}")
    pyfunc = flavors.get("python_function") if isinstance(flavors, dict) else None
    if not isinstance(pyfunc, dict):
        raise ValidationError(
            f"{which} has no python_function flavor (its MLmodel names: {', '.join(flavors) or 'none'}), so "
            "mlflow.pyfunc.load_model cannot serve it without code, as on Azure ML. Save it with a flavor that "
            "adds python_function (mlflow.sklearn, mlflow.pyfunc, ...), or deploy it with code_configuration "
            "and an environment."
        )
    if not needed:
        return None
    env = pyfunc.get("env") or "conda.yaml"
    conda = (env.get("conda") if isinstance(env, dict) else env) or "conda.yaml"
    path = (folder / str(conda)).resolve()
    if not path.is_file() or not path.is_relative_to(folder.resolve()):
        raise ValidationError(
            f"{which} has no conda file ({conda}, named by its python_function flavor) in its folder, so its "
            f"environment cannot be built. {fix} Or give the deployment an 'environment'."
        )
    return path


def create_or_update_deployment(
    store: WorkspaceStore, spec: dict[str, Any], base_path: Path, endpoint_name: str | None = None
) -> tuple[DeploymentRecord, bool]:
    """Validate a deployment, snapshot its code and write it in state Creating/Updating.

    The endpoint's host picks it up, starts its replicas and sets Succeeded or Failed.
    """
    # only deployment writes need the registries (~6 ms at start; the endpoint host imports this module)
    from emulator.environments import registry as environments

    spec = {k: v for k, v in spec.items() if v is not None}
    _unknown(spec, DEPLOYMENT_FIELDS, "online deployment")
    name = spec.get("name")
    endpoint_name = endpoint_name or spec.get("endpoint_name")
    if not endpoint_name:
        raise ValidationError("The deployment needs 'endpoint_name' (or --endpoint-name).")
    name = naming.check("deployment", name)
    try:
        endpoint = get_endpoint(store, endpoint_name)
    except ResourceNotFound:
        raise ResourceNotFound(
            f"Online endpoint '{endpoint_name}' does not exist, so deployment '{name}' has "
            "nowhere to go. Create the endpoint first: `amlemu online-endpoint create "
            f"--name {endpoint_name}`."
        ) from None
    try:
        existing = get_deployment(store, endpoint_name, name)
    except ResourceNotFound:
        existing = None
        twins = [
            d["deployment_name"]
            for d in list_deployments(store, endpoint_name)
            if str(d["deployment_name"]).lower() == str(name).lower()
        ]
        if twins:
            raise ResourceExists(
                f"Deployment '{name}' differs only in case from the existing '{twins[0]}' on endpoint "
                f"'{endpoint_name}': Azure ML names are case-insensitive, so they would name the same "
                f"deployment. Use '{twins[0]}' or another name."
            )
    kind = str(spec.get("type") or ("kubernetes" if endpoint["kind"] == "kubernetes" else "managed")).lower()
    if kind != endpoint["kind"]:
        raise ValidationError(
            f"A {kind} deployment cannot go on {endpoint['kind']} endpoint '{endpoint_name}': use "
            f"{'KubernetesOnlineDeployment' if endpoint['kind'] == 'kubernetes' else 'ManagedOnlineDeployment'}."
        )
    previous: Mapping[str, Any] = existing or {}
    merged = {**{k: previous.get(k) for k in ("model", "environment", "environment_variables")}, **spec}
    code_folder, script = (
        _code(spec, base_path) if ("code_configuration" in spec or "code_path" in spec) else (None, None)
    )
    if code_folder is None and previous.get("code") and "code_configuration" not in spec:
        code_src, script = None, previous["scoring_script"]
    else:
        code_src = code_folder
    has_code = bool(code_src or previous.get("code"))  # a scoring script, given now or kept from before
    environment = merged.get("environment")
    env_resolved = environments.resolve(store, environment, base_path) if environment else None
    if has_code and not environment:
        raise ValidationError(
            "A deployment with a scoring script needs an 'environment' (e.g. azureml:AzureML-sklearn-1.5@latest), "
            "an MLflow model's too, as on Azure ML. An mlflow_model deployed without code_configuration needs "
            "neither: its environment is built from the model's conda.yaml and a generated script serves it."
        )
    count = _positive_int(spec.get("instance_count", previous.get("instance_count", 1)), "instance_count", 0)
    if count > config_max_instances():
        raise ValidationError(
            f"instance_count {count} is above this machine's limit of {config_max_instances()} "
            "replicas per deployment (AMLEMU_MAX_INSTANCES)."
        )
    scale = (
        _scale_settings({**previous, **spec}, kind)
        if ("scale_settings" in spec or not existing)
        else previous["scale_settings"]
    )
    requests = _settings({**previous, **spec}, "request_settings", REQUEST_DEFAULTS, 1)
    if requests["request_timeout_ms"] > 180000:
        raise ValidationError("request_settings.request_timeout_ms is at most 180000 (3 minutes).")
    model = (
        _model(store, merged.get("model"), base_path, endpoint_name, name) if "model" in spec else previous.get("model")
    )
    if model is None and not has_code:
        raise ValidationError(
            "The deployment has neither a model nor a scoring script. Give 'model' (an ONNX "
            "model is served by the built-in scorer) and/or 'code_configuration'."
        )
    mlflow_folder = None if has_code else mlflow_model_folder(store, model)
    if mlflow_folder is not None:  # no-code deployment: Azure ML's generated script, and the model's environment
        conda_file = _mlflow_conda_file(mlflow_folder, model, needed=not environment)
        if conda_file is not None:
            env_resolved = environments.from_conda_file(conda_file, f"mlflow_model:{model['name']}:{model['version']}")
    body = {k: v for k, v in previous.items() if k not in ("name", "version", "created_at", "updated_at")}
    body.update(
        endpoint_name=endpoint_name,
        deployment_name=name,
        type=kind,
        model=model,
        scoring_script=script,
        environment=environment,
        environment_resolved=env_resolved,
        environment_variables={str(k): str(v) for k, v in (merged.get("environment_variables") or {}).items()},
        instance_count=count,
        instance_type=spec.get("instance_type", previous.get("instance_type")),
        request_settings=requests,
        liveness_probe=_settings({**previous, **spec}, "liveness_probe", PROBE_DEFAULTS, PROBE_MINIMUMS),
        readiness_probe=_settings({**previous, **spec}, "readiness_probe", PROBE_DEFAULTS, PROBE_MINIMUMS),
        scale_settings=scale,
        description=spec.get("description", previous.get("description")),
        tags=dict(spec.get("tags") or previous.get("tags") or {}),
        runtime=check_runtime(config.runtime_name()),
        generation=int(previous.get("generation", 0)) + 1,
        provisioning_state="Updating" if existing else "Creating",
        error=None,
    )
    folder = deployment_dir(store, endpoint_name, name)
    if code_src is not None:
        body["code_hash"] = _folder_hash(code_src)
        if body["code_hash"] == previous.get("code_hash") and previous.get("code"):
            code_src = None  # same files: keep the snapshot (an in-place update, no new replicas)
    if code_src is not None:  # the code is snapshotted, as Azure does at deployment time
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".code.", dir=folder))
        snapshots.copy(code_src, staging / "code")
        target = folder / f"code-{body['generation']}"
        staging.joinpath("code").rename(target)
        shutil.rmtree(staging, ignore_errors=True)
        body["code"] = str(target)
    store.put_asset(DEPLOYMENT, _key(endpoint_name, name), _V, body)
    return get_deployment(store, endpoint_name, name), existing is None


def _folder_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def set_deployment_state(store: WorkspaceStore, endpoint: str, name: str, *, generation: int, **fields: Any) -> bool:
    """Record a deployment's state (as its host does), unless a newer generation was written since."""
    with store.transaction() as db:
        row = db.execute(
            "SELECT body FROM assets WHERE kind = ? AND name = ? AND version = ?",
            (DEPLOYMENT, _key(endpoint, name), _V),
        ).fetchone()
        if row is None:
            return False
        body = json.loads(row["body"])
        if body.get("generation") != generation:
            return False
        body.update(fields)
        db.execute(
            "UPDATE assets SET body = ?, updated_at = ? WHERE kind = ? AND name = ? AND version = ?",
            (json.dumps(body), time.time(), DEPLOYMENT, _key(endpoint, name), _V),
        )
    return True


def delete_deployment_record(store: WorkspaceStore, endpoint: str, name: str) -> None:
    ep = get_endpoint(store, endpoint)
    get_deployment(store, endpoint, name)
    if ep["mirror_traffic"].get(name):
        raise ValidationError(
            f"Deployment '{name}' still gets mirror traffic from endpoint '{endpoint}'. Set its "
            f"mirror share to 0 first: `amlemu online-endpoint update --name {endpoint} "
            f'--mirror-traffic "{name}=0"`.'
        )
    if ep["traffic"].get(name):
        raise ValidationError(
            f"Deployment '{name}' still gets traffic from endpoint '{endpoint}'. Set its "
            f"traffic to 0 first: `amlemu online-endpoint update --name {endpoint} --traffic "
            '"<other>=100"`.'
        )
    with store.transaction() as db:
        db.execute("DELETE FROM assets WHERE kind = ? AND name = ?", (DEPLOYMENT, _key(endpoint, name)))
    shutil.rmtree(deployment_dir(store, endpoint, name), ignore_errors=True)


def config_max_instances() -> int:
    return int(config.setting("max_instances", "8"))
