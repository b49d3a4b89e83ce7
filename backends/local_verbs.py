"""The ``az ml`` verbs on the local backend: the engine called directly, the concepts' own views printed.

This is the CLI's fast path, an implementation detail of the local backend: YAML files are
read here and a spec the fast path vouches for (a plain command job) never imports
azure-ai-ml; anything else is loaded by the SDK's own ``load_<kind>`` first, so its
validation message is the one ``az ml`` would print.
"""

from __future__ import annotations

import json
import sys
import time
from argparse import Namespace
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backends import base
from backends.yaml_specs import COMPUTE_FLAGS, apply_sets, load_yaml_file, parse_traffic, sdk_load
from emulator import config, kinds
from emulator.compute import service as computes
from emulator.compute.views import compute_view
from emulator.data import assets as data_assets
from emulator.data import datastores
from emulator.data.views import data_container_view, data_view, datastore_view
from emulator.endpoints import local_mode
from emulator.endpoints import records as endpoint_records
from emulator.endpoints import service as endpoints
from emulator.endpoints.postman import collection
from emulator.endpoints.views import deployment_view, endpoint_view
from emulator.environments import curated
from emulator.environments import registry as environment_registry
from emulator.environments.curated import EnvironmentRef
from emulator.environments.views import curated_view, environment_view
from emulator.errors import EmulatorError, NotEmulated, ResourceNotFound, ValidationError
from emulator.jobs import lifecycle
from emulator.jobs import outputs as job_outputs
from emulator.jobs.stream import stream as stream_job
from emulator.models import registry as model_registry
from emulator.models.views import model_view
from emulator.pipelines import components
from emulator.pipelines.components import component_view, container_view
from emulator.runtime import check_runtime
from emulator.runtime.prune import prune as run_prune

MODEL_FIELDS = {
    "$schema",
    "name",
    "version",
    "path",
    "type",
    "description",
    "tags",
    "properties",
    "stage",
    "flavors",
    "job_name",
}
DATA_FIELDS = {
    "$schema",
    "name",
    "version",
    "path",
    "type",
    "description",
    "tags",
    "properties",
    "datastore",
}
ENVIRONMENT_FIELDS = {
    "$schema",
    "name",
    "version",
    "image",
    "conda_file",
    "build",
    "description",
    "tags",
    "properties",
    "os_type",
    "inference_config",
    "datastore",
}


# -- reading specs ------------------------------------------------------------------------------------------------
def _fast_fields(kind: str, data: dict) -> frozenset[str]:
    """The fields the fast path vouches for in a ``kind`` spec shaped like ``data`` (none: ask the SDK)."""
    if kind != "job":
        return frozenset()
    env = data.get("environment")
    if isinstance(env, str) and not env.startswith("azureml:"):
        return frozenset()  # the SDK insists on the azureml: prefix in YAML; let it say so
    try:
        return kinds.kind_of(data).fast_fields
    except NotEmulated:
        return frozenset()  # a type amlemu does not know: the SDK names it, or its NotEmulated follows


def validated_job(data: dict[str, Any], file: str | None, sets: list[str] | None) -> dict[str, Any]:
    """``data`` if the fast path vouches for it, else the SDK's reading of ``file`` as a job spec."""
    if set(data) <= _fast_fields("job", data) or not file:
        return data
    try:
        precheck = kinds.kind_of(data).precheck
    except NotEmulated:
        precheck = None
    if precheck is not None:  # the kind's own message, clearer than the SDK's
        precheck(data)
    entity = sdk_load("job", file, sets)
    # the SDK's entities are converted by the Python client's converters (they import azure-ai-ml)
    from backends.job_entities import job_to_spec

    spec = job_to_spec(entity)
    if data.get("name"):
        spec["name"] = data["name"]
    return spec


def check_fields(kind: str, data: dict, allowed: set[str], args: Namespace) -> None:
    """Unknown fields: the SDK's own message when a file was given, else ours."""
    unknown = set(data) - allowed
    if unknown and args.file:
        sdk_load(kind, args.file, args.set)  # raises with the SDK's own message
    if unknown:
        raise ValidationError(f"Unknown {kind} field(s): {', '.join(sorted(unknown))}.")


def _spec(
    args: Namespace, fields: tuple[str, ...], lower: tuple[str, ...] = (), extra: dict[str, Any] | None = None
) -> tuple[dict[str, Any], Path]:
    """``--file`` read, the flags in ``fields`` applied (``lower`` ones lower-cased), ``extra`` fields set,
    then ``--set``."""
    data, base_path = load_yaml_file(getattr(args, "file", None))
    for field in fields:
        value = getattr(args, field, None)
        if value is not None:
            data[field] = value.lower() if field in lower else value
    data.update(extra or {})
    apply_sets(data, getattr(args, "set", None))
    return data, base_path


def _local(args: Namespace) -> bool:
    """``--local``: azure-ai-ml's local endpoints (:mod:`emulator.endpoints.local_mode`)."""
    return bool(getattr(args, "local", False))


def _refuse_existing(lookup: Callable[[], Any], message: str) -> None:
    try:
        lookup()
    except EmulatorError as exc:
        if exc.code != "ResourceNotFound":
            raise
        return
    raise ValidationError(message)


def _registry(args) -> bool:
    """True when ``--registry-name`` names Azure's curated registry; another registry is not emulated."""
    registry = getattr(args, "registry_name", None)
    if registry and registry != curated.REGISTRY:
        raise NotEmulated(
            f"environment --registry-name {registry}",
            f"amlemu emulates only the '{curated.REGISTRY}' registry (Azure's curated environments); register "
            "the environment in the workspace instead (`amlemu environment create`).",
        )
    return bool(registry)


class LocalVerbs(base.Verbs):
    """The ``az ml`` verbs over one local workspace (``backend.store``)."""

    backend_name = "local"

    def __init__(self, backend: Any):
        self._backend = backend

    @property
    def store(self):
        return self._backend.store

    # -- job ------------------------------------------------------------------------------------------------------
    def job_create(self, args):
        store = self.store
        data, base_path = load_yaml_file(args.file)
        apply_sets(data, args.set)
        if args.name:
            data["name"] = args.name
        data = validated_job(data, args.file, args.set)
        job = kinds.submit(store, data, base_path)
        if args.stream:
            stream_job(store, job["name"], sys.stdout)
            job = lifecycle.get(store, job["name"])
        return kinds.view(store, job, tracking=args.stream)

    def job_show(self, args):
        return kinds.view(self.store, lifecycle.get(self.store, args.name))

    def job_list(self, args):
        limit = None if args.all_results else args.max_results
        children = args.parent_job_name is not None  # a sweep's trials: with their metrics, to compare them
        return [
            kinds.view(self.store, j, tracking=children)
            for j in lifecycle.list_jobs(self.store, args.parent_job_name, limit)
        ]

    def job_stream(self, args):
        stream_job(self.store, args.name, sys.stdout)

    def job_cancel(self, args):
        return kinds.view(self.store, lifecycle.cancel(self.store, args.name), tracking=False)

    def job_download(self, args):
        target = job_outputs.download(self.store, args.name, Path(args.download_path), args.output_name, args.all)
        print(f"Downloaded the outputs of job {args.name} to {target}", file=sys.stderr)

    # -- versioned assets -----------------------------------------------------------------------------------------
    def _asset_show(self, kind: str, view: Callable, args):
        if args.label not in (None, "latest"):
            raise ValidationError(f"Label '{args.label}' is not supported locally; use --label latest or --version.")
        return view(self.store, self.store.get_asset(kind, args.name, args.version))

    def _asset_list(self, kind: str, view: Callable, args):
        return [view(self.store, record) for record in self.store.list_assets(kind, args.name)]

    def model_create(self, args):
        data, base_path = _spec(args, ("name", "version", "path", "type", "description", "stage"))
        check_fields("model", data, MODEL_FIELDS, args)
        return model_view(self.store, model_registry.create_or_update(self.store, data, base_path))

    def model_show(self, args):
        return self._asset_show(model_registry.KIND, model_view, args)

    def model_list(self, args):
        return self._asset_list(model_registry.KIND, model_view, args)

    def model_download(self, args):
        target = model_registry.download(self.store, args.name, args.version, Path(args.download_path))
        print(f"Downloaded model {args.name} to {target}", file=sys.stderr)

    def component_create(self, args):
        data, base_path = _spec(args, ("name", "version"))
        return component_view(self.store, components.create_or_update(self.store, data, base_path))

    def component_show(self, args):
        return component_view(self.store, components.get(self.store, args.name, args.version, args.label))

    def component_list(self, args):
        if args.name:
            return [component_view(self.store, r) for r in components.versions(self.store, args.name)]
        return [container_view(self.store, n, rs) for n, rs in components.containers(self.store).items()]

    def environment_create(self, args):
        build = {"path": args.build_context, "dockerfile_path": args.dockerfile_path or "Dockerfile"}
        data, base_path = _spec(
            args,
            ("name", "version", "image", "conda_file", "description"),
            extra={"build": build} if args.build_context else None,
        )
        check_fields("environment", data, ENVIRONMENT_FIELDS, args)
        return environment_view(self.store, environment_registry.create(self.store, data, base_path))

    def environment_show(self, args):
        """A registered environment, or a curated one (``AzureML-<name>``, or ``<name> --registry-name azureml``)
        with the versions a job gets here next to Azure's."""
        if _registry(args):
            return curated_view(args.name, args.version, args.label)
        try:
            return self._asset_show(environment_registry.KIND, environment_view, args)
        except ResourceNotFound:
            if not EnvironmentRef(args.name).curated_key:
                raise
            return curated_view(args.name, args.version, args.label)

    def environment_list(self, args):
        if _registry(args):
            return [curated_view(name) for name in curated.environments() if args.name in (None, name)]
        return self._asset_list(environment_registry.KIND, environment_view, args)

    def environment_build(self, args):
        """Build now what the environment needs on the configured runtime; progress on stderr."""
        reference = f"azureml:{args.name}:{args.version}" if args.version else f"azureml:{args.name}@latest"
        resolved = environment_registry.resolve(self.store, reference, Path.cwd())
        runtime = check_runtime(config.runtime_name())  # docker with no engine: how to start one
        started = time.monotonic()
        summary = environment_registry.prepare(resolved, runtime, lambda line: print(line, file=sys.stderr, flush=True))
        return {
            "environment": resolved["reference"],
            **summary,
            "seconds": round(time.monotonic() - started, 2),
            "local_runtime": resolved["note"],
        }

    # -- compute --------------------------------------------------------------------------------------------------
    def compute_create(self, args):
        data, _ = _spec(args, COMPUTE_FLAGS, lower=("type",))
        return compute_view(self.store, computes.create_or_update(self.store, data))

    compute_attach = compute_create

    def compute_update(self, args):
        record = computes.get(self.store, args.name)
        current = {
            k: v
            for k, v in compute_view(self.store, record).items()
            if k
            in (
                "name",
                "type",
                "size",
                "tier",
                "description",
                "min_instances",
                "max_instances",
                "idle_time_before_scale_down",
                "tags",
                "location",
            )
        }
        data, _ = _spec(args, COMPUTE_FLAGS, lower=("type",))
        return compute_view(self.store, computes.create_or_update(self.store, {**current, **data}))

    def compute_show(self, args):
        return compute_view(self.store, computes.get(self.store, args.name))

    def compute_list(self, args):
        wanted = (args.type or "").lower()
        return [
            compute_view(self.store, r) for r in computes.list_computes(self.store) if not wanted or r["type"] == wanted
        ]

    def compute_delete(self, args):
        computes.delete(self.store, args.name)

    compute_detach = compute_delete

    def compute_start(self, args):
        computes.start(self.store, args.name)

    def compute_stop(self, args):
        computes.stop(self.store, args.name)

    def compute_restart(self, args):
        computes.restart(self.store, args.name)

    def compute_list_nodes(self, args):
        return computes.list_nodes(self.store, args.name)

    def compute_list_sizes(self, args):
        return computes.list_sizes()

    def compute_list_usage(self, args):
        """As ``az ml compute list-usage`` prints it: each ``Usage``'s own dump (snake_case, like ``list-sizes``)."""
        return computes.list_usage(self.store, args.location)

    # -- online endpoints -----------------------------------------------------------------------------------------
    def online_endpoint_create(self, args):
        data, _ = _spec(args, ("name", "auth_mode"))
        if _local(args):  # azure-ai-ml creates or updates a local endpoint (see emulator.endpoints.local_mode)
            return endpoint_view(self.store, local_mode.create_or_update_endpoint(self.store, data))
        _refuse_existing(
            lambda: endpoint_records.get_endpoint(self.store, data.get("name", "")),
            f"Online endpoint '{data.get('name')}' already exists; change it with `amlemu online-endpoint update`.",
        )
        return endpoint_view(self.store, endpoints.create_or_update_endpoint(self.store, data))

    def online_endpoint_update(self, args):
        data, _ = _spec(args, ("name", "auth_mode"))
        if getattr(args, "traffic", None):
            data["traffic"] = parse_traffic(args.traffic, "--traffic")
        if getattr(args, "mirror_traffic", None):
            data["mirror_traffic"] = parse_traffic(args.mirror_traffic, "--mirror-traffic")
        if _local(args):
            return endpoint_view(self.store, local_mode.create_or_update_endpoint(self.store, data))
        if data.get("name"):
            record = endpoint_records.get_endpoint(self.store, data["name"])
            data = {
                "name": data["name"],
                "traffic": record["traffic"],
                "mirror_traffic": record["mirror_traffic"],
                **data,
            }
        return endpoint_view(self.store, endpoints.create_or_update_endpoint(self.store, data))

    def online_endpoint_show(self, args):
        if _local(args):
            return endpoint_view(self.store, local_mode.get_endpoint(self.store, args.name))
        local_mode.workspace_endpoint(self.store, args.name)
        return endpoint_view(self.store, endpoints.get_endpoint(self.store, args.name))

    def online_endpoint_list(self, args):
        if _local(args):
            return [endpoint_view(self.store, r) for r in local_mode.list_endpoints(self.store)]
        return [endpoint_view(self.store, r) for r in endpoints.list_endpoints(self.store) if not r.get("local")]

    def online_endpoint_delete(self, args):
        if _local(args):
            return local_mode.delete_endpoint(self.store, args.name)
        local_mode.workspace_endpoint(self.store, args.name)
        endpoints.delete_endpoint(self.store, args.name)

    def online_endpoint_invoke(self, args):
        path = Path(args.request_file)
        if not path.is_file():
            raise ValidationError(f"--request-file '{args.request_file}' does not exist.")
        if _local(args):  # the answer as it comes, whatever its status, as azure-ai-ml returns a local endpoint's
            status, headers, body = local_mode.invoke(self.store, args.name, path.read_bytes(), args.deployment_name)
        else:
            local_mode.workspace_endpoint(self.store, args.name)
            status, headers, body = endpoints.invoke(self.store, args.name, path.read_bytes(), args.deployment_name)
        text = body.decode(errors="replace")
        if status >= 400 and not _local(args):
            raise EmulatorError(
                f"Endpoint '{args.name}' answered {status}"
                + (
                    f" (model status {headers['ms-azureml-model-error-statuscode']})"
                    if "ms-azureml-model-error-statuscode" in headers
                    else ""
                )
                + f": {text}",
                code="EndpointInvokeFailed",
                status=status,
            )
        try:
            return json.loads(text)
        except ValueError:
            return text

    def online_endpoint_get_credentials(self, args):
        creds = endpoints.get_keys(self.store, args.name)
        if creds["auth_mode"] == "key":
            return {"primaryKey": creds["primary_key"], "secondaryKey": creds["secondary_key"]}
        return {
            "accessToken": creds["access_token"],
            "expiryTimeUtc": creds["expiry_time_utc"],
            "refreshAfterTimeUtc": creds["refresh_after_time_utc"],
            "tokenType": creds["token_type"],
        }

    def online_endpoint_regenerate_keys(self, args):
        endpoints.regenerate_keys(self.store, args.name, args.key_type)

    def online_endpoint_export_postman(self, args):
        return collection(self.store, args.name, Path(args.request_file) if args.request_file else None)

    # -- online deployments ---------------------------------------------------------------------------------------
    def online_deployment_create(self, args):
        data, base_path = _spec(args, ("name", "endpoint_name"))
        _refuse_existing(
            lambda: endpoint_records.get_deployment(
                self.store, data.get("endpoint_name") or "", data.get("name") or ""
            ),
            f"Deployment '{data.get('name')}' already exists; change it with `amlemu online-deployment update`.",
        )
        return self._deploy(args, data, base_path)

    def online_deployment_update(self, args):
        return self._deploy(args, *_spec(args, ("name", "endpoint_name")))

    def _deploy(self, args, data: dict[str, Any], base_path: Path):
        if _local(args):  # one deployment per local endpoint, replacing the other, awaited (see local_mode)
            return deployment_view(self.store, local_mode.create_or_update_deployment(self.store, data, base_path))
        if data.get("endpoint_name"):
            local_mode.workspace_endpoint(self.store, data["endpoint_name"])
        record = endpoints.create_or_update_deployment(self.store, data, base_path, wait=not args.no_wait)
        endpoint, name = record["endpoint_name"], record["deployment_name"]
        if getattr(args, "all_traffic", False):
            endpoints.create_or_update_endpoint(self.store, {"name": endpoint, "traffic": {name: 100}})
        return deployment_view(self.store, endpoints.get_deployment(self.store, endpoint, name))

    def online_deployment_show(self, args):
        if _local(args):
            return deployment_view(self.store, local_mode.get_deployment(self.store, args.endpoint_name, args.name))
        local_mode.workspace_endpoint(self.store, args.endpoint_name)
        return deployment_view(self.store, endpoints.get_deployment(self.store, args.endpoint_name, args.name))

    def online_deployment_list(self, args):
        if _local(args):  # every local deployment, as azure-ai-ml lists them
            return [deployment_view(self.store, r) for r in local_mode.list_deployments(self.store)]
        local_mode.workspace_endpoint(self.store, args.endpoint_name)
        return [deployment_view(self.store, r) for r in endpoints.list_deployments(self.store, args.endpoint_name)]

    def online_deployment_delete(self, args):
        if _local(args):
            return local_mode.delete_deployment(self.store, args.endpoint_name, args.name)
        local_mode.workspace_endpoint(self.store, args.endpoint_name)
        endpoints.delete_deployment(self.store, args.endpoint_name, args.name)

    def online_deployment_get_logs(self, args):
        if _local(args):
            sys.stdout.write(local_mode.get_logs(self.store, args.endpoint_name, args.name, args.lines))
            return
        local_mode.workspace_endpoint(self.store, args.endpoint_name)
        sys.stdout.write(endpoints.get_logs(self.store, args.endpoint_name, args.name, args.lines, args.container))

    # -- system ---------------------------------------------------------------------------------------------------
    def system_status(self, args):
        return {"workspace": self.store.name, "endpoint_hosts": endpoints.running_hosts(self.store)}

    def system_stop(self, args):
        stopped = [
            h["endpoint"] for h in endpoints.running_hosts(self.store) if endpoints.stop_host(self.store, h["endpoint"])
        ]
        return {"stopped": stopped}

    def system_start(self, args):
        return {"started": [e["name"] for e in endpoints.list_endpoints(self.store)]}

    def system_prune(self, args):
        return run_prune(all_images=args.all, venv_days=args.days)

    # -- data assets and datastores -------------------------------------------------------------------------------
    def data_create(self, args):
        data, base_path = _spec(args, ("name", "version", "path", "type", "description", "datastore"))
        check_fields("data", data, DATA_FIELDS, args)
        return data_view(self.store, data_assets.create_or_update(self.store, data, base_path))

    def _data_version(self, args) -> dict[str, Any]:
        label = args.label or (None if args.version else "latest")
        return data_assets.get(self.store, args.name, args.version, label)

    def data_show(self, args):
        return data_view(self.store, self._data_version(args))

    def data_list(self, args):
        view_type = "All" if args.include_archived else "ArchivedOnly" if args.archived_only else "ActiveOnly"
        if args.name:
            found = [data_view(self.store, r) for r in data_assets.list_versions(self.store, args.name, view_type)]
        else:
            found = [data_container_view(self.store, e) for e in data_assets.list_assets(self.store, view_type)]
        return found[: args.max_results] if args.max_results else found

    def data_archive(self, args):
        data_assets.set_archived(self.store, args.name, True, args.version, args.label)

    def data_restore(self, args):
        data_assets.set_archived(self.store, args.name, False, args.version, args.label)

    def data_update(self, args):
        """``--set`` applied to the version as shown; only its description, tags and properties may change."""
        view = data_view(self.store, self._data_version(args))
        data = {k: view[k] for k in DATA_FIELDS if k in view}
        apply_sets(data, args.set)
        check_fields("data", data, DATA_FIELDS, Namespace(file=None))
        for field in ("name", "version", "path", "type"):
            if data.get(field) != view[field]:
                raise ValidationError(
                    f"--set {field}: a data version's {field} cannot change; only its description, tags and "
                    f"properties can. Register new data as a new version with `amlemu data create`."
                )
        return data_view(self.store, data_assets.create_or_update(self.store, data, Path.cwd()))

    def datastore_show(self, args):
        return datastore_view(self.store, datastores.get(self.store, args.name))

    def datastore_list(self, args):
        found = [datastore_view(self.store, d) for d in datastores.list_datastores(self.store)]
        return found[: args.max_results] if args.max_results else found

    def datastore_create(self, args):
        raise datastores.not_emulated("amlemu datastore create")

    def datastore_delete(self, args):
        raise datastores.not_emulated("amlemu datastore delete")
