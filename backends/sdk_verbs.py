"""The ``az ml`` verbs over any ``MLClient``-shaped backend, as the ``az ml`` CLI extension does them.

A YAML file is loaded with azure-ai-ml's own ``load_<kind>`` (flags such as ``--name`` and
every ``--set`` as ``params_override``), the client's operation groups are called, and an
entity is printed as ``az ml`` prints it: its ``_to_dict()``; an object without one (the
endpoint keys) as the Azure CLI serialises any object: its public attributes, camelCased.
Used for the Azure backend (the real ``MLClient``) and for any third-party backend that does
not bring verbs of its own.
"""

from __future__ import annotations

import copy
import enum
import itertools
import json
import sys
from argparse import Namespace
from pathlib import Path
from typing import Any

from backends import base
from backends.yaml_specs import COMPUTE_FLAGS, parse_traffic, sdk_load, set_overrides
from emulator.endpoints import postman
from emulator.errors import ValidationError


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def dump(entity: Any) -> Any:
    """``entity`` as ``az ml`` prints it.

    azure-ai-ml reads a command or sweep job back as a pipeline node (``Command``, ``Sweep``), whose own
    ``_to_dict()`` is the node's shape (the job under ``component``, no ``name`` or ``status``); ``az ml job
    show`` prints the job, so a node is turned back into its job first. Enum values (``created_by_type``) are
    printed as their values (``User``), as the Azure CLI's JSON encoder prints them."""
    if isinstance(entity, _node_class()):
        entity = entity._to_job()
    if hasattr(entity, "_to_dict"):  # first: a command(...) node is also a dict (azure-ai-ml's _AttrDict)
        return _plain(_enum_values(entity)._to_dict())
    if entity is None or isinstance(entity, (str, int, float, bool, dict, list)):
        return entity
    return {_camel(k): v for k, v in vars(entity).items() if not k.startswith("_") and v is not None}


def _node_class() -> type:
    from azure.ai.ml.entities._builders.base_node import BaseNode  # the SDK's own: only when printing

    return BaseNode


def _enum_values(entity: Any, depth: int = 2) -> Any:
    """A shallow copy of ``entity`` whose enum attributes (and those of its attribute objects, such as
    ``creation_context``) hold their values: the SDK's schemas print an enum with ``str()``, which gives
    ``JobStatus.COMPLETED`` for azure-core's string enums."""
    changed = {}
    for key, value in vars(entity).items():
        if isinstance(value, enum.Enum):
            changed[key] = value.value
        elif depth > 1 and hasattr(value, "__dict__") and any(isinstance(v, enum.Enum) for v in vars(value).values()):
            changed[key] = _enum_values(value, depth - 1)
    if not changed:
        return entity
    twin = copy.copy(entity)
    twin.__dict__.update(changed)
    return twin


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def dump_all(entities: Any) -> list:
    return [dump(e) for e in entities]


class SdkVerbs(base.Verbs):
    """The verbs over ``client`` (``jobs``, ``models``, ... shaped like ``MLClient``'s)."""

    def __init__(self, client: Any, backend_name: str = "azure"):
        self.client = client
        self.backend_name = backend_name

    # -- job ------------------------------------------------------------------------------------------------------
    def job_create(self, args: Namespace):
        job = sdk_load("job", args.file, args.set, fields={"name": args.name})
        job = self.client.jobs.create_or_update(job, skip_validation=bool(getattr(args, "skip_validation", False)))
        if args.stream:
            self.client.jobs.stream(job.name)
            job = self.client.jobs.get(job.name)
        return dump(job)

    def job_show(self, args):
        return dump(self.client.jobs.get(args.name))

    def job_list(self, args):
        jobs = self.client.jobs.list(parent_job_name=args.parent_job_name)
        return dump_all(jobs if args.all_results else itertools.islice(jobs, args.max_results))

    def job_stream(self, args):
        self.client.jobs.stream(args.name)

    def job_cancel(self, args):
        self.client.jobs.begin_cancel(args.name).result()
        return dump(self.client.jobs.get(args.name))

    def job_download(self, args):
        self.client.jobs.download(
            args.name, download_path=args.download_path, output_name=args.output_name, all=args.all
        )
        print(f"Downloaded the outputs of job {args.name} to {args.download_path}", file=sys.stderr)

    # -- versioned assets -----------------------------------------------------------------------------------------
    def _asset_get(self, operations: Any, args):
        label = args.label or (None if args.version else "latest")
        return dump(operations.get(args.name, version=args.version, label=label))

    def model_create(self, args):
        fields = {f: getattr(args, f, None) for f in ("name", "version", "path", "type", "description", "stage")}
        return dump(self.client.models.create_or_update(sdk_load("model", args.file, args.set, fields=fields)))

    def model_show(self, args):
        return self._asset_get(self.client.models, args)

    def model_list(self, args):
        return dump_all(self.client.models.list(name=args.name))

    def model_download(self, args):
        version = args.version or self.client.models.get(args.name, label="latest").version
        self.client.models.download(args.name, version, download_path=args.download_path)
        print(f"Downloaded model {args.name} to {args.download_path}", file=sys.stderr)

    def environment_create(self, args):
        fields = {f: getattr(args, f, None) for f in ("name", "version", "image", "conda_file", "description")}
        if args.build_context:
            fields["build"] = {"path": args.build_context, "dockerfile_path": args.dockerfile_path or "Dockerfile"}
        environment = sdk_load("environment", args.file, args.set, fields=fields)
        return dump(self.client.environments.create_or_update(environment))

    def environment_show(self, args):
        _no_registry(args)
        return self._asset_get(self.client.environments, args)

    def environment_list(self, args):
        _no_registry(args)
        return dump_all(self.client.environments.list(name=args.name))

    def component_create(self, args):
        fields = {f: getattr(args, f, None) for f in ("name", "version")}
        return dump(self.client.components.create_or_update(sdk_load("component", args.file, args.set, fields=fields)))

    def component_show(self, args):
        return self._asset_get(self.client.components, args)

    def component_list(self, args):
        return dump_all(self.client.components.list(name=args.name))

    # -- compute --------------------------------------------------------------------------------------------------
    def compute_create(self, args):
        fields = {f: getattr(args, f, None) for f in (*COMPUTE_FLAGS, "resource_id")}
        poller = self.client.compute.begin_create_or_update(sdk_load("compute", args.file, args.set, fields=fields))
        return None if args.no_wait else dump(poller.result())

    compute_attach = compute_create

    def compute_update(self, args):
        compute = self.client.compute.get(args.name)
        for field in ("min_instances", "max_instances", "idle_time_before_scale_down", "description"):
            if getattr(args, field, None) is not None:
                setattr(compute, field, getattr(args, field))
        if args.set:
            raise ValidationError("--set is not supported by `compute update` on this backend; use the flags.")
        poller = self.client.compute.begin_update(compute)
        return None if args.no_wait else dump(poller.result())

    def compute_show(self, args):
        return dump(self.client.compute.get(args.name))

    def compute_list(self, args):
        return dump_all(self.client.compute.list(compute_type=args.type))

    def _compute_action(self, args, poller: Any) -> None:
        if not args.no_wait:
            poller.result()

    def compute_delete(self, args):
        self._compute_action(args, self.client.compute.begin_delete(args.name))

    def compute_detach(self, args):
        self._compute_action(args, self.client.compute.begin_delete(args.name, action="Detach"))

    def compute_start(self, args):
        self._compute_action(args, self.client.compute.begin_start(args.name))

    def compute_stop(self, args):
        self._compute_action(args, self.client.compute.begin_stop(args.name))

    def compute_restart(self, args):
        self._compute_action(args, self.client.compute.begin_restart(args.name))

    def compute_list_nodes(self, args):
        return dump_all(self.client.compute.list_nodes(args.name))

    def compute_list_sizes(self, args):
        return dump_all(self.client.compute.list_sizes(location=args.location))

    def compute_list_usage(self, args):
        return dump_all(self.client.compute.list_usage(location=args.location))

    # -- online endpoints -----------------------------------------------------------------------------------------
    def _endpoint_fields(self, args) -> dict[str, Any]:
        return {"name": args.name, "auth_mode": args.auth_mode}

    def online_endpoint_create(self, args):
        endpoint = sdk_load("online_endpoint", args.file, args.set, fields=self._endpoint_fields(args))
        poller = self.client.online_endpoints.begin_create_or_update(endpoint)
        return None if args.no_wait else dump(poller.result())

    def online_endpoint_update(self, args):
        if args.file:
            endpoint = sdk_load("online_endpoint", args.file, args.set, fields=self._endpoint_fields(args))
        else:  # flags only: change the endpoint as it is
            if not args.name:
                raise ValidationError("`online-endpoint update` needs --name or --file.")
            endpoint = self.client.online_endpoints.get(args.name)
            if args.set:
                raise ValidationError("--set needs --file with `online-endpoint update` on this backend.")
        if args.traffic:
            endpoint.traffic = parse_traffic(args.traffic, "--traffic")
        if args.mirror_traffic:
            endpoint.mirror_traffic = parse_traffic(args.mirror_traffic, "--mirror-traffic")
        poller = self.client.online_endpoints.begin_create_or_update(endpoint)
        return None if args.no_wait else dump(poller.result())

    def online_endpoint_show(self, args):
        return dump(self.client.online_endpoints.get(args.name))

    def online_endpoint_list(self, args):
        return dump_all(self.client.online_endpoints.list())

    def online_endpoint_delete(self, args):
        poller = self.client.online_endpoints.begin_delete(name=args.name)
        if not args.no_wait:
            poller.result()

    def online_endpoint_invoke(self, args):
        text = self.client.online_endpoints.invoke(
            endpoint_name=args.name, request_file=args.request_file, deployment_name=args.deployment_name
        )
        try:
            return json.loads(text)
        except (TypeError, ValueError):
            return text

    def online_endpoint_get_credentials(self, args):
        return dump(self.client.online_endpoints.get_keys(args.name))

    def online_endpoint_regenerate_keys(self, args):
        poller = self.client.online_endpoints.begin_regenerate_keys(args.name, key_type=args.key_type)
        if not args.no_wait:
            poller.result()

    def online_endpoint_export_postman(self, args):
        endpoint = self.client.online_endpoints.get(args.name)
        keys = self.client.online_endpoints.get_keys(args.name)
        secret = getattr(keys, "primary_key", None) or getattr(keys, "access_token", None) or ""
        request_file = Path(args.request_file) if args.request_file else None
        workspace = getattr(self.client, "workspace_name", None) or "the Azure ML workspace"
        return postman.build_collection(
            args.name,
            scoring_uri=endpoint.scoring_uri,
            openapi_uri=endpoint.openapi_uri,
            secret=secret,
            auth_mode=endpoint.auth_mode,
            deployments=list(endpoint.traffic or {}),
            sample=postman.sample_body(request_file, endpoint.openapi_uri, secret),
            where=f"Azure ML workspace '{workspace}'",
        )

    # -- online deployments ---------------------------------------------------------------------------------------
    def _deploy(self, args):
        deployment = sdk_load(
            "online_deployment", args.file, args.set, fields={"name": args.name, "endpoint_name": args.endpoint_name}
        )
        poller = self.client.online_deployments.begin_create_or_update(
            deployment, skip_script_validation=bool(args.skip_script_validation)
        )
        if args.no_wait:
            return None
        result = poller.result()
        if getattr(args, "all_traffic", False):
            endpoint = self.client.online_endpoints.get(deployment.endpoint_name)
            endpoint.traffic = {deployment.name: 100}
            self.client.online_endpoints.begin_create_or_update(endpoint).result()
        return dump(result)

    online_deployment_create = _deploy
    online_deployment_update = _deploy

    def online_deployment_show(self, args):
        return dump(self.client.online_deployments.get(args.name, args.endpoint_name))

    def online_deployment_list(self, args):
        return dump_all(self.client.online_deployments.list(args.endpoint_name))

    def online_deployment_delete(self, args):
        self.client.online_deployments.begin_delete(args.name, args.endpoint_name).result()

    def online_deployment_get_logs(self, args):
        sys.stdout.write(
            self.client.online_deployments.get_logs(
                args.name, args.endpoint_name, args.lines, container_type=args.container
            )
        )

    # -- data assets and datastores -------------------------------------------------------------------------------
    def data_create(self, args):
        fields = {f: getattr(args, f, None) for f in ("name", "version", "path", "type", "description", "datastore")}
        return dump(self.client.data.create_or_update(sdk_load("data", args.file, args.set, fields=fields)))

    def data_show(self, args):
        return self._asset_get(self.client.data, args)

    def data_list(self, args):
        from azure.ai.ml.constants import ListViewType  # the SDK is loaded by then; the enum is its own

        view_type = (
            ListViewType.ALL
            if args.include_archived
            else ListViewType.ARCHIVED_ONLY
            if args.archived_only
            else ListViewType.ACTIVE_ONLY
        )
        found = self.client.data.list(name=args.name, list_view_type=view_type)
        return dump_all(itertools.islice(found, args.max_results) if args.max_results else found)

    def data_archive(self, args):
        self.client.data.archive(args.name, version=args.version, label=args.label)

    def data_restore(self, args):
        self.client.data.restore(args.name, version=args.version, label=args.label)

    def data_update(self, args):
        """``--set description=...``, ``tags.<key>=...`` or ``properties.<key>=...`` on the version, written back."""
        data = self.client.data.get(
            args.name, version=args.version, label=args.label or (None if args.version else "latest")
        )
        for override in set_overrides(args.set):
            ((key, value),) = override.items()
            field, _, sub = key.partition(".")
            if field == "description" and not sub:
                data.description = value
            elif field in ("tags", "properties") and sub:
                setattr(data, field, {**(getattr(data, field) or {}), sub: str(value)})
            else:
                raise ValidationError(
                    f"--set {key}: only a data version's description, tags.<key> and properties.<key> may change."
                )
        return dump(self.client.data.create_or_update(data))

    def datastore_show(self, args):
        return dump(self.client.datastores.get(args.name))

    def datastore_list(self, args):
        found = self.client.datastores.list()
        return dump_all(itertools.islice(found, args.max_results) if args.max_results else found)

    def datastore_create(self, args):
        datastore = sdk_load("datastore", args.file, args.set, fields={"name": args.name})
        return dump(self.client.datastores.create_or_update(datastore))

    def datastore_delete(self, args):
        self.client.datastores.delete(args.name)


def _no_registry(args) -> None:
    """``--registry-name`` needs a registry-scoped client, which this backend does not make: refused, not ignored."""
    if getattr(args, "registry_name", None):
        raise ValidationError(
            f"--registry-name {args.registry_name} works with the local backend only (Azure's curated environments "
            "as amlemu knows them). On Azure ML use `az ml environment show --registry-name ...`, or name the "
            "curated environment as a workspace does: --name AzureML-<name>."
        )
