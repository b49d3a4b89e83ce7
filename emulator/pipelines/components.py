"""Registered components: command component versions in the workspace, and the pipeline steps that name them.

A version is registered from the component's YAML shape (``az ml component create --file``, the local backend's
``ml_client.components.create_or_update``) or, through ``amlemu serve``, from the ``componentSpec`` azure-ai-ml
sends. A local ``code`` folder is copied into the workspace at registration (Azure uploads it), so a version
outlives the folder it came from and runs the code it was registered with; its content hash is what a
re-registration is compared by. A spec keeps what the engine needs to run the component as a command job:
``command``, ``code``, ``environment``, ``inputs`` and ``outputs`` as declared (types, defaults, optional),
``resources``, ``distribution``.

Versions are immutable, as on Azure: the same spec again updates the version's description and tags; another
spec is a conflict. Without a version, the next whole number is taken (``az ml component create``). ``latest``
is the only label (the highest numbered version). Only command components are emulated, since the engine runs a
pipeline's steps as command jobs. Not emulated: archiving or deleting, labels other than ``latest``, registries'
components, other component types, ``additional_includes``.

A pipeline step ``component: azureml:<name>:<version>`` (or ``@latest``) runs as the command job
:func:`step_job` makes of the component and the step: the step's inputs bound to the declared ones (a declared
default fills an input the step leaves out), its compute, environment variables and limits on top.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from emulator import arm, config, naming
from emulator.data.assets import content_hash
from emulator.errors import NotEmulated, ResourceExists, ResourceNotFound, ValidationError
from emulator.store import WorkspaceStore
from emulator.store import staging as stagings

KIND = "component"
#: the component types whose steps the engine runs
EMULATED_TYPES = ("command",)
#: the name of every anonymous component (azure-ai-ml's ``ANONYMOUS_COMPONENT_NAME``), its version a hash of its spec
ANONYMOUS = "azureml_anonymous"
LATEST = "latest"
#: azure-ai-ml's rule for component names (``ComponentNameStr``), at most 255 characters here
_NAME = re.compile(r"[a-z][a-z0-9_]{0,254}", re.ASCII)
_NAME_TEXT = "lower-case letters, digits and '_', starting with a lower-case letter (at most 255)"
_REFERENCE = re.compile(r"azureml:(?P<name>[^:@/]+)(?::(?P<version>[^:@/]+)|@(?P<label>[^:@/]+))?")
#: a command component's YAML fields (azure-ai-ml's ``CommandComponentSchema``, those amlemu reads)
SPEC_FIELDS = {
    "$schema",
    "name",
    "version",
    "display_name",
    "description",
    "tags",
    "properties",
    "type",
    "command",
    "code",
    "environment",
    "inputs",
    "outputs",
    "resources",
    "distribution",
    "is_deterministic",
    "additional_includes",
}
#: fields of a version that are not its spec: updatable (description, tags) or the version's identity
_NOT_SPEC = ("$schema", "name", "version", "description", "tags", "properties")
#: spec fields azure-ai-ml adds for itself
_CLIENT_FIELDS = ("_source",)
#: what a pipeline step naming a component may set besides its inputs and outputs (the rest is the component's)
STEP_FIELDS = {
    "type",
    "component",
    "inputs",
    "outputs",
    "compute",
    "display_name",
    "description",
    "tags",
    "environment_variables",
    "resources",
    "limits",
    "name",
    "experiment_name",
}
_SCHEMA = "https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json"


# -- names and references --------------------------------------------------------------------------------------------
def check_name(name: Any, version: Any = None) -> str:
    """``name`` if it is a component name Azure ML takes (and ``version`` a version), else a ValidationError."""
    if name != ANONYMOUS and not (isinstance(name, str) and _NAME.fullmatch(name)):
        problem = "is missing" if name in (None, "") else f"{naming.shown(name)} is invalid"
        raise ValidationError(f"Component name {problem}: Azure ML takes {_NAME_TEXT}. Rename the component.")
    if version is not None:
        naming.check("version", version, f"of component '{name}'")
    return name


def parse_reference(reference: str, field: str = "The component") -> tuple[str, str | None, str | None]:
    """``(name, version, label)`` of ``azureml:<name>:<version>`` or ``azureml:<name>@<label>``."""
    match = _REFERENCE.fullmatch(reference) if isinstance(reference, str) else None
    if match is None or not (match["version"] or match["label"]):
        raise ValidationError(
            f"{field} {naming.shown(reference)} is not a registered component reference: write "
            "azureml:<name>:<version> or azureml:<name>@latest."
        )
    return match["name"], match["version"], match["label"]


# -- versions --------------------------------------------------------------------------------------------------------
def get(store: WorkspaceStore, name: str, version: str | None = None, label: str | None = None) -> dict[str, Any]:
    """One version of ``name``: by ``version``, else by ``label`` (``latest``, also when neither is given)."""
    if version is not None and label is not None:
        raise ValidationError("Give a component version or a label, not both.")
    if label not in (None, LATEST):
        raise NotEmulated(
            f"component labels other than 'latest' (component '{name}', label '{label}')",
            f"Name a version (azureml:{name}:<version>, --version) or the label 'latest'.",
        )
    check_name(name, version)
    try:
        return store.get_asset(KIND, name, version)
    except ResourceNotFound:
        which = f" version '{version}'" if version is not None else ""
        raise ResourceNotFound(
            f"Component '{name}'{which} not found in workspace '{store.name}'. Register it first (`amlemu "
            "component create --file <component.yml>`, ml_client.components.create_or_update); `amlemu component "
            "list` shows what is registered."
        ) from None


def resolve(store: WorkspaceStore, reference: str, field: str = "The component") -> dict[str, Any]:
    """The version ``azureml:<name>:<version>`` or ``azureml:<name>@latest`` names."""
    name, version, label = parse_reference(reference, field)
    return get(store, name, version, label)


def versions(store: WorkspaceStore, name: str) -> list[dict[str, Any]]:
    """Every version of ``name``, the highest first; a ResourceNotFound when it has none."""
    found = store.list_assets(KIND, check_name(name))
    if not found:
        get(store, name)  # raises, saying how components are registered
    return found


def containers(store: WorkspaceStore) -> dict[str, list[dict[str, Any]]]:
    """The named components of the workspace (not the anonymous ones), each with its versions, highest first."""
    out: dict[str, list[dict[str, Any]]] = {}
    for record in store.list_assets(KIND):
        if not record.get("is_anonymous"):
            out.setdefault(record["name"], []).append(record)
    return out


def checked_spec(spec: dict[str, Any], name: str) -> dict[str, Any]:
    """``spec`` without the fields a client adds, if it is a component the engine runs (a command component)."""
    spec = {k: v for k, v in spec.items() if k not in _CLIENT_FIELDS}
    kind = spec.get("type") or "command"
    if kind not in EMULATED_TYPES:
        raise NotEmulated(
            f"{kind} components (component '{name}')",
            "amlemu runs pipeline steps as command jobs: register a command component (type: command).",
        )
    if not spec.get("command") or not isinstance(spec["command"], str):
        raise ValidationError(
            f"Component '{name}' has no command: a command component needs the command line it runs, e.g. "
            "command: python train.py --data ${{inputs.data}}"
        )
    for port in ("inputs", "outputs"):
        declared = spec.get(port) or {}
        if not isinstance(declared, dict):
            raise ValidationError(f"Component '{name}' {port} must be a mapping of port name to its declaration.")
        for key in declared:
            naming.check(port[:-1], key, f"of component '{name}'")
    inputs = {key: _declared_input(port) for key, port in (spec.get("inputs") or {}).items()}
    return {**spec, "type": kind, **({"inputs": inputs} if inputs else {})}


def _declared_input(port: Any) -> Any:
    """An input declaration with its default as text, as azure-ai-ml sends it (``default: 3`` is ``'3'``), so a
    component registered from YAML and the same one registered through the SDK are the same spec."""
    if not isinstance(port, dict) or port.get("default") is None or isinstance(port["default"], str):
        return port
    return {**port, "default": str(port["default"])}


def _comparable(spec: dict[str, Any], code_hash: str | None) -> str:
    """A spec as a re-registration is compared: without what may change, its code by content."""
    kept = {k: v for k, v in spec.items() if k not in _NOT_SPEC}
    if code_hash is not None:
        kept["code"] = code_hash
    return json.dumps(kept, sort_keys=True, default=str)


def register(
    store: WorkspaceStore,
    name: str,
    version: str | None,
    spec: dict[str, Any],
    *,
    description: str | None = None,
    tags: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
    is_anonymous: bool = False,
    code: Path | None = None,
) -> tuple[dict[str, Any], bool]:
    """Register version ``version`` of component ``name`` (the next number when None) with ``spec``; ``code``: a
    local folder (or file) copied in as the version's code. Returns the record and whether it is new.

    The same spec again (its code compared by content) updates the version's description and tags; another spec
    is a ResourceExists naming the fix. Anonymous components (``azureml_anonymous``, versioned by a hash of their
    spec) are registered once.
    """
    check_name(name, version)
    spec = checked_spec(spec, name)
    code_hash = content_hash(code) if code is not None else None
    body = {
        "component_spec": {k: v for k, v in spec.items() if k not in _NOT_SPEC},
        "is_anonymous": is_anonymous,
        "description": description,
        "tags": {str(k): str(v) for k, v in (tags or {}).items()},
        "properties": {str(k): str(v) for k, v in (properties or {}).items()},
        "code_hash": code_hash,
    }
    root = naming.confined_join(store.root, f"{KIND}s", name)
    staging = stagings.make(root) if code is not None else None
    try:
        if code is not None:
            copy = shutil.copytree if code.is_dir() else shutil.copy2
            copy(code, staging / "code")
        with store.transaction() as db:
            if version is None:
                version = store.next_version(db, KIND, name)
            if code is not None:
                body["component_spec"]["code"] = str(store.asset_dir(KIND, name, version) / "code")
            try:
                store.insert_asset(db, KIND, name, version, body)
            except ResourceExists:
                existing = None
            else:
                existing = body
                if staging is not None:
                    staging.rename(store.asset_dir(KIND, name, version))
                    staging = None
        if existing is not None:
            return store.get_asset(KIND, name, version), True
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    current = store.get_asset(KIND, name, version)
    if _comparable(current["component_spec"], current.get("code_hash")) != _comparable(spec, code_hash):
        raise ResourceExists(
            f"Component '{name}' version '{version}' already exists with another spec; a version cannot change. "
            "Register another version (or leave the version out for the next one)."
        )
    if is_anonymous:  # the SDK registers a step's anonymous component at every submission: nothing changes
        return current, False
    kept = {k: v for k, v in current.items() if k not in ("name", "version", "created_at", "updated_at")}
    store.put_asset(KIND, name, version, {**kept, "description": description, "tags": body["tags"]})
    return store.get_asset(KIND, name, version), False


def create_or_update(store: WorkspaceStore, spec: dict[str, Any], base_path: Path) -> dict[str, Any]:
    """Register a command component from its YAML shape (``az ml component create --file``): relative paths
    (``code``, an inline environment's ``conda_file``) from ``base_path``, the local code copied in."""
    unknown = set(spec) - SPEC_FIELDS
    if unknown:
        raise ValidationError(
            f"Unknown command component field(s): {', '.join(sorted(unknown))}. A command component takes "
            f"{', '.join(sorted(SPEC_FIELDS - {'$schema'}))}."
        )
    name = check_name(spec.get("name"), spec.get("version"))
    if spec.get("additional_includes"):
        raise NotEmulated(
            f"additional_includes (component '{name}')", "Put the files the component needs in its code folder."
        )
    if not spec.get("environment"):
        raise ValidationError(
            f"Component '{name}' has no environment: a command component runs in one. Add e.g. environment: "
            "azureml:AzureML-sklearn-1.5@latest (or an inline image / conda_file)."
        )
    version = str(spec["version"]) if spec.get("version") is not None else None
    code = _local_code(spec.get("code"), base_path, name)
    spec = {**spec, "environment": _environment(spec.get("environment"), base_path)}
    spec = {k: v for k, v in spec.items() if v is not None and k != "additional_includes"}
    record, _ = register(
        store,
        name,
        version,
        spec,
        description=spec.get("description"),
        tags=spec.get("tags"),
        properties=spec.get("properties"),
        code=code,
    )
    return record


def _local_code(code: Any, base_path: Path, name: str) -> Path | None:
    if not code:
        return None
    text = str(code)
    if text.startswith(("azureml:", "git+", "http://", "https://", "wasbs://", "abfss://")):
        raise NotEmulated(
            f"remote code '{text}' (component '{name}')", "Point the component's 'code' at a local folder."
        )
    local = (base_path / text.removeprefix("file:")).resolve()
    if not local.exists():
        raise ValidationError(
            f"Component '{name}': code '{text}' does not exist (looked at {local}). Fix 'code:'; it is relative "
            "to the component's YAML file."
        )
    return local


def _environment(environment: Any, base_path: Path) -> Any:
    """An inline environment with its local files as absolute paths (the component outlives its YAML's folder)."""
    if not isinstance(environment, dict):
        return environment
    out = dict(environment)
    if isinstance(out.get("conda_file"), str) and not out["conda_file"].startswith(("azureml:", "http")):
        out["conda_file"] = str((base_path / out["conda_file"]).resolve())
    build = out.get("build")
    if isinstance(build, dict) and isinstance(build.get("path"), str):
        out["build"] = {**build, "path": str((base_path / build["path"]).resolve())}
    return out


# -- steps -----------------------------------------------------------------------------------------------------------
def step_job(record: dict[str, Any], step: dict[str, Any], where: str) -> dict[str, Any]:
    """The command job a pipeline step that names component version ``record`` runs (bindings kept as strings):
    the component's command, code, environment, resources and distribution; the step's inputs (a declared
    default fills one it leaves out), outputs, compute, environment variables and limits."""
    spec = record["component_spec"]
    shown = f"component azureml:{record['name']}:{record['version']}"
    unknown = set(step) - STEP_FIELDS
    if unknown:
        raise ValidationError(
            f"{where} names {shown}, so it takes only {', '.join(sorted(STEP_FIELDS))}; remove "
            f"{', '.join(sorted(unknown))} (the component defines them)."
        )
    for field in ("code", "environment"):
        if isinstance(spec.get(field), str) and spec[field].startswith(("/subscriptions/", "azureml:/subscriptions/")):
            raise NotEmulated(
                f"{shown}, registered through amlemu serve with its {field} as an ARM id, in a pipeline run here",
                "Submit the pipeline through amlemu serve (the SDK), or register the component with `amlemu "
                "component create --file <component.yml>`.",
            )
    declared_in, declared_out = spec.get("inputs") or {}, spec.get("outputs") or {}
    given_in, given_out = step.get("inputs") or {}, step.get("outputs") or {}
    for port, given, declared in (("input", given_in, declared_in), ("output", given_out, declared_out)):
        extra = sorted(set(given) - set(declared))
        if extra:
            raise ValidationError(
                f"{where}: {shown} has no {port}(s) {', '.join(extra)} (its {port}s: "
                f"{', '.join(declared) or 'none'}). Fix the name under the step's '{port}s:'."
            )
    inputs = {}
    for key, port in declared_in.items():
        port = port if isinstance(port, dict) else {"type": port}
        if key in given_in:
            inputs[key] = given_in[key]
        elif port.get("default") is not None:
            inputs[key] = _default(port)
        elif not port.get("optional"):
            raise ValidationError(
                f"{where}: input '{key}' of {shown} has no value and no default. Give it under the step's "
                f"'inputs:' ({key}: ${{{{parent.inputs.<name>}}}} or a value)."
            )
    outputs = {}
    for key, port in declared_out.items():
        port = port if isinstance(port, dict) else {"type": port}
        declared = {k: v for k, v in port.items() if k in ("type", "mode")}
        outputs[key] = given_out[key] if key in given_out else {"type": "uri_folder", **declared}
    job = {
        "type": "command",
        "command": spec["command"],
        "code": spec.get("code"),
        "environment": spec.get("environment"),
        "distribution": spec.get("distribution"),
        "resources": {**(spec.get("resources") or {}), **(step.get("resources") or {})} or None,
        "display_name": step.get("display_name") or spec.get("display_name"),
        "inputs": inputs,
        "outputs": outputs,
    }
    job.update({k: step[k] for k in ("compute", "description", "tags", "environment_variables", "limits") if k in step})
    return {k: v for k, v in job.items() if v is not None}


def _default(port: dict[str, Any]) -> Any:
    """A declared input's default as a step input: a literal as its type says (YAML keeps '3'), data as a path."""
    kind, default = port.get("type") or "string", port["default"]
    if kind == "boolean":
        return str(default).lower() == "true"
    if kind in ("integer", "number", "string"):
        try:
            return {"integer": int, "number": float}.get(kind, str)(default)
        except (TypeError, ValueError):
            return default
    return {"type": kind, "path": default, **({"mode": port["mode"]} if port.get("mode") else {})}


# -- views -----------------------------------------------------------------------------------------------------------
def component_view(store: WorkspaceStore, record: dict[str, Any]) -> dict[str, Any]:
    """The ``az ml component show`` JSON of a version: its YAML shape with id, creation context and resource group."""
    view = {
        "$schema": _SCHEMA,
        **record["component_spec"],
        "name": record["name"],
        "version": record["version"],
        "description": record.get("description"),
        "tags": record.get("tags") or {},
        "creation_context": arm.creation_context(record["created_at"], None, record["updated_at"]),
        "id": arm.arm_id(store.name, f"components/{record['name']}/versions/{record['version']}"),
        "resourceGroup": config.RESOURCE_GROUP,
    }
    return {k: view[k] for k in sorted(view) if view[k] is not None}


def container_view(store: WorkspaceStore, name: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """A component as a whole, as ``az ml component list`` shows it: its name and latest version."""
    first = min(records, key=lambda r: r["created_at"])
    return {
        "creation_context": arm.creation_context(first["created_at"], None, max(r["updated_at"] for r in records)),
        "id": arm.arm_id(store.name, f"components/{name}"),
        "latest_version": records[0]["version"],
        "name": name,
        "resourceGroup": config.RESOURCE_GROUP,
        "tags": {},
    }


def component_resource(store: WorkspaceStore, record: dict[str, Any]) -> dict[str, Any]:
    """A version as the Azure ML REST API answers it (the SDK's ``ComponentVersion``)."""
    spec = {**record["component_spec"], "name": record["name"], "version": record["version"]}
    if record.get("description") is not None:
        spec["description"] = record["description"]
    if record.get("tags"):
        spec["tags"] = record["tags"]
    tail = f"components/{record['name']}/versions/{record['version']}"
    return {
        "id": arm.resource_id(store.name, tail),
        "name": record["version"],
        "type": "Microsoft.MachineLearningServices/workspaces/components/versions",
        "properties": {
            "componentSpec": spec,
            "description": record.get("description"),
            "tags": record.get("tags") or {},
            "properties": record.get("properties") or {},
            "isAnonymous": record.get("is_anonymous", False),
            "isArchived": False,
            "provisioningState": "Succeeded",
        },
        "systemData": arm.system_data(record["created_at"], None, record["updated_at"]),
    }
