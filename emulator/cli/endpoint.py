"""``amlemu online-endpoint ...`` and ``amlemu online-deployment ...``, as ``az ml`` spells them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from emulator.cli.common import verbs
from emulator.cli.yamlfile import apply_sets, load_yaml_file
from emulator.endpoints import service
from emulator.endpoints.views import deployment_view, endpoint_view
from emulator.errors import EmulatorError, ValidationError
from emulator.store import open_store


# -- helpers ------------------------------------------------------------------------------------------------
def parse_traffic(text: str, flag: str) -> dict[str, int]:
    """``"blue=90 green=10"`` (az ml's form) as a dict."""
    out: dict[str, int] = {}
    for item in text.replace(",", " ").split():
        name, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise ValidationError(f"{flag} '{text}' must look like \"blue=90 green=10\" (whole percentages).")
        out[name] = int(value)
    return out


def _spec(args, fields: tuple[str, ...]) -> tuple[dict[str, Any], Path]:
    data, base = load_yaml_file(getattr(args, "file", None))
    for field in fields:
        value = getattr(args, field, None)
        if value is not None:
            data[field] = value
    apply_sets(data, getattr(args, "set", None))
    return data, base


# -- online-endpoint -----------------------------------------------------------------------------------------
def endpoint_create(args):
    store = open_store()
    data, _ = _spec(args, ("name", "auth_mode"))
    if args.verb == "create":
        from emulator.endpoints import records

        try:
            records.get_endpoint(store, data.get("name", ""))
            raise ValidationError(f"Online endpoint '{data['name']}' already exists; change it with "
                                  "`amlemu online-endpoint update`.")
        except EmulatorError as exc:
            if exc.code != "ResourceNotFound":
                raise
    if getattr(args, "traffic", None):
        data["traffic"] = parse_traffic(args.traffic, "--traffic")
    if getattr(args, "mirror_traffic", None):
        data["mirror_traffic"] = parse_traffic(args.mirror_traffic, "--mirror-traffic")
    if args.verb == "update" and data.get("name"):
        data = {**{k: v for k, v in _endpoint_spec(store, data["name"]).items()}, **data}
    return endpoint_view(store, service.create_or_update_endpoint(store, data))


def _endpoint_spec(store, name: str) -> dict[str, Any]:
    from emulator.endpoints import records

    record = records.get_endpoint(store, name)
    return {"name": name, "traffic": record["traffic"], "mirror_traffic": record["mirror_traffic"]}


def endpoint_show(args):
    store = open_store()
    return endpoint_view(store, service.get_endpoint(store, args.name))


def endpoint_list(args):
    store = open_store()
    return [endpoint_view(store, r) for r in service.list_endpoints(store)]


def endpoint_delete(args):
    service.delete_endpoint(open_store(), args.name)


def endpoint_invoke(args):
    store = open_store()
    path = Path(args.request_file)
    if not path.is_file():
        raise ValidationError(f"--request-file '{args.request_file}' does not exist.")
    status, headers, body = service.invoke(store, args.name, path.read_bytes(), args.deployment_name)
    text = body.decode(errors="replace")
    if status >= 400:
        raise EmulatorError(f"Endpoint '{args.name}' answered {status}"
                            + (f" (model status {headers['ms-azureml-model-error-statuscode']})"
                               if "ms-azureml-model-error-statuscode" in headers else "") + f": {text}",
                            code="EndpointInvokeFailed", status=status)
    try:
        return json.loads(text)
    except ValueError:
        return text


def endpoint_credentials(args):
    creds = service.get_keys(open_store(), args.name)
    if creds["auth_mode"] == "key":
        return {"primaryKey": creds["primary_key"], "secondaryKey": creds["secondary_key"]}
    return {"accessToken": creds["access_token"], "expiryTimeUtc": creds["expiry_time_utc"],
            "refreshAfterTimeUtc": creds["refresh_after_time_utc"], "tokenType": creds["token_type"]}


def endpoint_regenerate(args):
    service.regenerate_keys(open_store(), args.name, args.key_type)


def endpoint_postman(args):
    from emulator.endpoints.postman import collection

    store = open_store()
    return collection(store, args.name, Path(args.request_file) if args.request_file else None)


# -- online-deployment ---------------------------------------------------------------------------------------------
def deployment_create(args):
    store = open_store()
    data, base = _spec(args, ("name", "endpoint_name"))
    if args.verb == "create":
        from emulator.endpoints import records

        try:
            records.get_deployment(store, data.get("endpoint_name") or "", data.get("name") or "")
            raise ValidationError(f"Deployment '{data['name']}' already exists; change it with "
                                  "`amlemu online-deployment update`.")
        except EmulatorError as exc:
            if exc.code != "ResourceNotFound":
                raise
    record = service.create_or_update_deployment(store, data, base, wait=not args.no_wait)
    if getattr(args, "all_traffic", False):
        endpoint = record["endpoint_name"]
        service.create_or_update_endpoint(store, {"name": endpoint, "traffic": {record["deployment_name"]: 100}})
    return deployment_view(store, service.get_deployment(store, record["endpoint_name"], record["deployment_name"]))


def deployment_show(args):
    store = open_store()
    return deployment_view(store, service.get_deployment(store, args.endpoint_name, args.name))


def deployment_list(args):
    store = open_store()
    return [deployment_view(store, r) for r in service.list_deployments(store, args.endpoint_name)]


def deployment_delete(args):
    service.delete_deployment(open_store(), args.endpoint_name, args.name)


def deployment_logs(args):
    sys.stdout.write(service.get_logs(open_store(), args.endpoint_name, args.name, args.lines, args.container))


def register(groups, common) -> None:
    verb = verbs(groups, "online-endpoint", "online endpoints: scoring URIs with auth and traffic rules", common)
    for name, help_ in (("create", "create an endpoint"), ("update", "update traffic, mirror traffic, tags")):
        p = verb(name, endpoint_create, help_)
        p.add_argument("-f", "--file")
        p.add_argument("-n", "--name")
        p.add_argument("--auth-mode", dest="auth_mode", choices=["key", "aml_token", "aad_token"])
        p.add_argument("--set", action="append", metavar="PATH=VALUE")
        p.add_argument("--local", action="store_true", help="accepted: everything is local here")
        p.add_argument("--no-wait", action="store_true")
        if name == "update":
            p.add_argument("-r", "--traffic", help='"blue=90 green=10"')
            p.add_argument("--mirror-traffic", help='"green=10"')
    p = verb("show", endpoint_show, "show an endpoint")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("--local", action="store_true")
    p = verb("list", endpoint_list, "list endpoints")
    p.add_argument("--local", action="store_true")
    p = verb("delete", endpoint_delete, "delete an endpoint and its deployments")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-y", "--yes", action="store_true")
    p.add_argument("--no-wait", action="store_true")
    p.add_argument("--local", action="store_true")
    p = verb("invoke", endpoint_invoke, "call the endpoint's scoring URI")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-r", "--request-file", required=True)
    p.add_argument("-d", "--deployment-name")
    p.add_argument("--local", action="store_true")
    p = verb("get-credentials", endpoint_credentials, "show the keys (key auth) or a token (aml_token auth)")
    p.add_argument("-n", "--name", required=True)
    p = verb("regenerate-keys", endpoint_regenerate, "replace the primary or secondary key")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("--key-type", default="primary", choices=["primary", "secondary"])
    p.add_argument("--no-wait", action="store_true")
    p = verb("export-postman", endpoint_postman, "print a Postman collection (v2.1) for the endpoint")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-r", "--request-file", help="sample body (default: a row of zeros fitted to the model)")

    verb = verbs(groups, "online-deployment", "deployments: replicas serving a model behind an endpoint", common)
    for name, help_ in (("create", "create a deployment"), ("update", "update a deployment (e.g. --set instance_count=3)")):
        p = verb(name, deployment_create, help_)
        p.add_argument("-f", "--file")
        p.add_argument("-n", "--name")
        p.add_argument("-e", "--endpoint-name", dest="endpoint_name")
        p.add_argument("--set", action="append", metavar="PATH=VALUE")
        p.add_argument("--no-wait", action="store_true")
        p.add_argument("--local", action="store_true")
        p.add_argument("--skip-script-validation", action="store_true")
        if name == "create":
            p.add_argument("--all-traffic", action="store_true", help="route 100%% of the endpoint's traffic here")
    for name, handler, help_ in (("show", deployment_show, "show a deployment"),
                                 ("delete", deployment_delete, "delete a deployment")):
        p = verb(name, handler, help_)
        p.add_argument("-n", "--name", required=True)
        p.add_argument("-e", "--endpoint-name", dest="endpoint_name", required=True)
        p.add_argument("-y", "--yes", action="store_true")
        p.add_argument("--local", action="store_true")
    p = verb("list", deployment_list, "list an endpoint's deployments")
    p.add_argument("-e", "--endpoint-name", dest="endpoint_name", required=True)
    p.add_argument("--local", action="store_true")
    p = verb("get-logs", deployment_logs, "the last lines of a deployment's scoring-server log")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-e", "--endpoint-name", dest="endpoint_name", required=True)
    p.add_argument("-l", "--lines", type=int, default=100)
    p.add_argument("-c", "--container", choices=["inference-server", "storage-initializer"])
    p.add_argument("--local", action="store_true")
