"""Command job specs: validated, with local paths resolved, before anything is recorded.

The input is the CLI v2 YAML shape (a dict), whether it came from a YAML file or
from an azure-ai-ml entity (``backends.local`` converts entities to this shape).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator import naming
from emulator.compute.distribution import normalize as normalize_distribution
from emulator.data import datastores
from emulator.data import paths as data_paths
from emulator.errors import NotEmulated, ValidationError
from emulator.store import WorkspaceStore
from emulator.store.db import TERMINAL

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import CommandJobSpec, JobInput, JobOutput, JobRecord, JobSpecHeader

#: the fields every job kind's YAML has (the rest are the kind's own)
JOB_HEADER_FIELDS = {
    "$schema",
    "type",
    "name",
    "display_name",
    "description",
    "tags",
    "properties",
    "experiment_name",
    "compute",
}
COMMAND_JOB_FIELDS = JOB_HEADER_FIELDS | {
    "command",
    "code",
    "environment",
    "environment_variables",
    "inputs",
    "outputs",
    "resources",
    "distribution",
    "limits",
    "services",
    "identity",
    "queue_settings",
    "is_deterministic",
    "parent_job_name",
}
LITERAL_TYPES = {"string", "integer", "number", "boolean"}
DATA_TYPES = {"uri_file", "uri_folder", "mltable", "custom_model", "mlflow_model", "triton_model"}
REMOTE_PREFIXES = (
    "http://",
    "https://",
    "azureml://",
    "wasbs://",
    "wasb://",
    "abfss://",
    "abfs://",
    "adl://",
    "s3://",
    "gs://",
)
_JOB_OUTPUT = re.compile(r"^azureml://jobs/(?P<job>[^/]+)/outputs/(?P<output>[^/]+)(?:/paths/(?P<path>.*))?/?$")
_MODEL_REFERENCE = re.compile(r"^azureml:(?P<name>[^:@/]+)(?::(?P<version>[^:@/]+)|@latest)$")
MODEL_TYPES = {"custom_model", "mlflow_model", "triton_model"}
_REF = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z_][\w]*)\s*\}\}")
_OPTIONAL_BLOCK = re.compile(r"\[([^\[\]]*)\]")


def _remote_input_error(name: str, path: str) -> ValidationError:
    return ValidationError(
        f"Input '{name}' points to remote data '{path}', which the local emulator cannot fetch "
        f"(it works offline). Give it a local copy instead, e.g. "
        f"`--set inputs.{name}.path=./local-copy` on the CLI, or "
        f"Input(type=..., path='./local-copy') in Python."
    )


def _workspace_data(
    store: WorkspaceStore | None, name: str, raw: str, kind: str | None
) -> tuple[Path, str, str | None]:
    """A workspace reference as (local path, reference shown, the asset's type or None): a datastore path, a
    job's output (``azureml://jobs/<job>/outputs/<output>[/paths/<p>]``), a model (a model-typed input) or a
    data asset."""
    if store is None:
        raise NotEmulated(
            f"input '{name}' path '{raw}' in this job type",
            f"Data assets and datastore paths are resolved for command jobs; point input '{name}' at a local "
            f"path here (--set inputs.{name}.path=./local-copy).",
        )
    if data_paths.is_datastore_uri(raw):
        ref = data_paths.parse(store, raw)
        return data_paths.local(store, ref), raw, None
    job_output = _JOB_OUTPUT.match(raw)
    if job_output:
        job = store.get_job(job_output["job"])
        if job["status"] not in TERMINAL:
            raise ValidationError(
                f"Input '{name}' reads an output of job '{job['name']}', which is {job['status']}: its outputs are "
                f"final once it ends. Wait with `amlemu job stream --name {job['name']}`, then submit this job."
            )
        folder = job_output_folder(store, job, job_output["output"])
        inside = (job_output["path"] or "").strip("/")
        return (naming.confined_join(folder, inside) if inside else folder), raw, None
    if kind in MODEL_TYPES:
        return _model_input(store, name, raw)
    from emulator.data import assets as data_assets  # only a data asset input needs it (~5 ms at a supervisor's start)

    record = data_assets.reference(store, raw)
    try:
        local = data_assets.local_path(store, record)
    except ValidationError as exc:
        raise ValidationError(f"Input '{name}': {exc.message}") from None
    return local, f"azureml:{record['name']}:{record['version']}", record["type"]


def _model_input(store: WorkspaceStore, name: str, raw: str) -> tuple[Path, str, str]:
    """A registered model as an input: ``azureml:<model>:<version>`` or ``azureml:<model>@latest``."""
    match = _MODEL_REFERENCE.match(raw)
    if not match:
        raise ValidationError(
            f"Input '{name}' path '{raw}' is not a model reference. Write azureml:<model>:<version> or "
            "azureml:<model>@latest."
        )
    record = store.get_asset("model", match["name"], match["version"] or "latest")
    # where emulator.models.registry keeps a version's files (that layer is above this one)
    local = naming.confined_join(store.asset_dir("model", record["name"], record["version"]), record["local_path"])
    return local, f"azureml:{record['name']}:{record['version']}", record["type"]


def job_output_folder(store: WorkspaceStore, job: JobRecord, output: str) -> Path:
    """The local folder of a job's output (``artifacts``/``default``: its artifacts; a uri_file output written to a
    datastore path: the file)."""
    name = job["name"]
    if output in ("artifacts", "default"):
        return store.job_dir(name) / "artifacts"
    outputs = job["spec"].get("outputs") or {}
    if output not in outputs:
        known = ", ".join(["artifacts", *outputs])
        raise ValidationError(f"Job '{name}' has no output '{output}' (outputs: {known}).")
    if outputs[output].get("path"):
        return output_path(store, store.job_dir(name), output, outputs[output])
    # a pipeline's output links to its step's output folder: confined to the workspace's jobs, not to this job
    return naming.confined_join(store.job_dir(name).parent, name, "outputs", naming.check("output", output))


def normalize_input(name: str, value: Any, base_path: Path, store: WorkspaceStore | None = None) -> JobInput:
    """One job input as ``{"type", "value"}`` (literal) or ``{"type", "path", "mode"}`` (data).

    With the workspace ``store``, a data asset (``azureml:<name>:<version>``, ``azureml:<name>@latest``)
    or a datastore path (``azureml://datastores/<ds>/paths/<p>``) resolves to its local file or folder;
    ``reference`` keeps what the input named (the asset's version, as Azure resolves ``@latest`` at submit).
    """
    if isinstance(value, (str, int, float, bool)):
        return {"type": "literal", "value": value}
    if not isinstance(value, dict):
        raise ValidationError(
            f"Input '{name}' must be a literal value or a mapping with 'type' and 'path'; got {type(value).__name__}."
        )
    raw_path = str(value.get("path") or "")
    if raw_path.startswith("/subscriptions/") and "/providers/Microsoft.MachineLearningServices/" in raw_path:
        raw_path = f"azureml:{raw_path}"  # an asset's ARM id, as the SDK's Data.id gives it
        value = {**value, "path": raw_path}
    workspace_data = raw_path.startswith("azureml:")
    reference: str | None = None
    if workspace_data:
        path, reference, asset_type = _workspace_data(store, name, raw_path, value.get("type"))
        value = {"type": asset_type or "uri_folder", **value}
    kind = value.get("type", "uri_folder")
    if kind in LITERAL_TYPES:
        if "default" not in value and "value" not in value:
            raise ValidationError(f"Input '{name}' of type {kind} needs a 'value'.")
        return {"type": "literal", "value": value.get("value", value.get("default"))}
    if kind not in DATA_TYPES:
        raise ValidationError(
            f"Input '{name}' has unknown type '{kind}'. Use one of: {', '.join(sorted(DATA_TYPES | LITERAL_TYPES))}."
        )
    raw = value.get("path")
    if not raw:
        raise ValidationError(f"Input '{name}' ({kind}) needs a 'path'.")
    raw = str(raw)
    if workspace_data:
        if not path.exists():
            raise ValidationError(
                f"Input '{name}' path '{raw}' holds nothing yet (looked at {path}). Write the data there first "
                f"(a job output with path: {raw}, or `amlemu data create`), or fix the path."
            )
    elif raw.startswith(REMOTE_PREFIXES):
        raise _remote_input_error(name, raw)
    else:
        local = raw[len("file://") :] if raw.startswith("file://") else raw
        path = (base_path / local).resolve()
        if not path.exists():
            raise ValidationError(
                f"Input '{name}' path '{raw}' does not exist (looked at {path}). "
                "Fix the path; relative paths are resolved from the YAML file's folder "
                "(or the current directory in Python)."
            )
    if kind == "uri_file" and not path.is_file():
        raise ValidationError(f"Input '{name}' is a uri_file but {path} is a folder; use type: uri_folder.")
    if kind in ("uri_folder", "mltable") and not path.is_dir():
        raise ValidationError(f"Input '{name}' is a {kind} but {path} is a file; use type: uri_file.")
    normalized: JobInput = {"type": kind, "path": str(path), "mode": value.get("mode", "ro_mount")}
    if reference:
        normalized["reference"] = reference
    return normalized


OUTPUT_MODES = ("rw_mount", "upload", "direct")


#: where Azure writes an output that has no path (here: only one registered as a data asset, by ``name``)
DEFAULT_OUTPUT_PATH = "azureml://datastores/${{default_datastore}}/paths/azureml/${{name}}/${{output_name}}/"


def normalize_output(name: str, value: Any, store: WorkspaceStore | None = None) -> JobOutput:
    """One job output: its type and mode, and a datastore ``path`` when it names one (where it is written).

    A path may hold Azure's ``${{name}}`` (the job's name, filled in at submit), ``${{output_name}}``
    and ``${{default_datastore}}``. An output with a ``name`` (and optionally a ``version``) is registered
    as that data asset when the job completes; without a path it is written to Azure's default one.
    """
    naming.check("output", name)  # it becomes the output's folder
    value = value if isinstance(value, dict) else {}
    output: JobOutput = {"type": value.get("type", "uri_folder"), "mode": value.get("mode", "rw_mount")}
    raw = value.get("path")
    if value.get("name") is not None:
        output["name"] = naming.check("data", value["name"], f"(the data asset output '{name}' registers)")
        if value.get("version") is not None:
            output["version"] = naming.check("version", value["version"], f"of output '{name}'")
            if store is not None:
                _refuse_existing_version(store, name, output["name"], output["version"])
        raw = raw or DEFAULT_OUTPUT_PATH
    elif value.get("version") is not None:
        raise ValidationError(
            f"Output '{name}' has a version but no name. Add name: <data asset name> to register the output as "
            "that data asset version, or remove the version."
        )
    if raw:
        raw = str(raw).replace("${{output_name}}", name).replace("${{default_datastore}}", datastores.DEFAULT)
        if not data_paths.is_datastore_uri(raw):
            raise ValidationError(
                f"Output '{name}' path '{raw}' is not a datastore path; a job writes its outputs to a datastore. "
                f"Use azureml://datastores/{datastores.DEFAULT}/paths/<folder>/, or leave the path out (the "
                "output stays with the job)."
            )
        if store is None:
            raise NotEmulated(
                f"output '{name}' path '{raw}' in this job type",
                "Datastore paths are resolved for command jobs; leave the output's path out here.",
            )
        ref = data_paths.parse(store, raw.replace("${{name}}", "job"))
        data_paths.local(store, ref)  # an unknown datastore is refused now
        output["path"] = raw
    return output


def _refuse_existing_version(store: WorkspaceStore, output: str, name: str, version: str) -> None:
    from emulator.data import assets as data_assets  # only a registered output needs it (~5 ms at a supervisor's start)

    if any(r["version"] == version for r in data_assets.versions(store, name)):
        raise ValidationError(
            f"Output '{output}' would register data asset '{name}' version '{version}', which exists; versions are "
            "immutable. Leave the version out (the next one is taken) or pick an unused one."
        )


def fill_output_paths(spec: CommandJobSpec) -> None:
    """Put the job's name into its outputs' datastore paths (``${{name}}``), once it is named."""
    for output in spec["outputs"].values():
        if "path" in output:
            output["path"] = output["path"].replace("${{name}}", spec["name"])


def output_path(store: WorkspaceStore, job_dir: Path, name: str, output: JobOutput) -> Path:
    """Where a command job's output is written: its datastore path, else ``<job>/outputs/<name>``."""
    if output.get("path"):
        return data_paths.local(store, data_paths.parse(store, output["path"]))
    return naming.confined_join(job_dir, "outputs", naming.check("output", name))


def render_command(command: str, inputs: dict[str, Any], outputs: dict[str, Any]) -> str:
    """Substitute ``${{inputs.x}}``/``${{outputs.y}}``; ``[...]`` blocks drop when their input is absent.

    ``inputs`` maps names to their substituted text; ``outputs`` likewise.
    """

    def block(match: re.Match) -> str:
        refs = _REF.findall(match.group(1))
        if not refs:
            return match.group(0)
        present = all(name in (inputs if kind == "inputs" else outputs) for kind, name in refs)
        return match.group(1) if present else ""

    command = _OPTIONAL_BLOCK.sub(block, command)

    def sub(match: re.Match) -> str:
        kind, name = match.groups()
        table = inputs if kind == "inputs" else outputs
        if name not in table:
            defined = ", ".join(sorted(table)) or "none"
            raise ValidationError(
                f"The command refers to ${{{{{kind}.{name}}}}}, but the job defines no {kind[:-1]} "
                f"named '{name}' (defined: {defined}). Add it under '{kind}:' or fix the name."
            )
        return str(table[name])

    return _REF.sub(sub, command)


def int_in_range(where: str, value: Any, low: int, high: int | None = None) -> int:
    """A whole-number setting (``where`` names it in the error), at least ``low`` and at most ``high``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ValidationError(f"{where} must be an integer; got {value!r}.")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValidationError(f"{where} must be {bound}; got {value}.")
    return value


def job_header(data: dict[str, Any], job_type: str, name: str | None) -> JobSpecHeader:
    """The fields every job type shares, normalised (tags and properties as strings)."""
    header = {
        "type": job_type,
        "name": name,
        "display_name": data.get("display_name"),
        "description": data.get("description"),
        "tags": {str(k): str(v) for k, v in (data.get("tags") or {}).items()},
        "properties": {str(k): str(v) for k, v in (data.get("properties") or {}).items()},
        "experiment_name": data.get("experiment_name"),
        "compute": data.get("compute"),
    }
    # name, display_name and experiment_name may still be None: submission.name_job fills them in
    # before the job is recorded, and a recorded spec is what JobSpecHeader describes
    return header  # type: ignore[return-value]


def check_job_fields(data: dict[str, Any], allowed: set[str], what: str) -> str | None:
    """Refuse unknown fields and a malformed name, for any job type; returns the name (or None)."""
    unknown = set(data) - allowed
    if unknown:
        raise ValidationError(
            f"Unknown field(s) {', '.join(sorted(unknown))} in the {what}. Remove or rename "
            f"them; valid fields: {', '.join(sorted(allowed - {'$schema'}))}."
        )
    name = data.get("name")
    return None if name is None else naming.check("job", name)


def normalize_command_job(data: dict[str, Any], base_path: Path, store: WorkspaceStore | None = None) -> CommandJobSpec:
    """Validate a command job (CLI v2 YAML shape) and resolve everything local (with the workspace
    ``store``: data assets and datastore paths too).

    Raises:
        ValidationError: naming the field that is wrong and how to fix it.
    """
    name = check_job_fields(data, COMMAND_JOB_FIELDS, "command job")
    if data.get("type", "command") != "command":
        raise NotEmulated(f"{data['type']} jobs", "Only command jobs are emulated so far.")
    command = data.get("command")
    if not command or not isinstance(command, str):
        raise ValidationError("The job has no 'command'. Add the command line to run, e.g. command: python train.py")
    code = data.get("code")
    if code:
        code = str(code)
        if code.startswith(("azureml:", "git+", "http://", "https://")):
            raise NotEmulated(f"remote code '{code}'", "Point 'code' at a local folder.")
        code_path = (base_path / code).resolve()
        if not code_path.exists():
            raise ValidationError(
                f"Code folder '{code}' does not exist (looked at {code_path}). "
                "Fix 'code:'; it is relative to the YAML file's folder."
            )
        code = str(code_path)
    inputs = {
        naming.check("input", k): normalize_input(k, v, base_path, store) for k, v in (data.get("inputs") or {}).items()
    }
    outputs = {key: normalize_output(key, value, store) for key, value in (data.get("outputs") or {}).items()}
    # check every reference now, with placeholders, so a bad one records nothing
    render_command(command, {k: "" for k in inputs}, {k: "" for k in outputs})
    resources = dict(data.get("resources") or {})
    resources["instance_count"], distribution = normalize_distribution(
        data.get("distribution"), resources.get("instance_count")
    )
    env_vars = data.get("environment_variables") or {}
    if not isinstance(env_vars, dict):
        raise ValidationError("environment_variables must be a mapping of NAME: value.")
    limits = data.get("limits") or {}
    return {
        **job_header(data, "command", name),
        "command": command,
        "code": code,
        "environment": data.get("environment"),
        "environment_variables": {str(k): str(v) for k, v in env_vars.items()},
        "inputs": inputs,
        "outputs": outputs,
        "resources": resources,
        "distribution": distribution,
        "limits": {"timeout": limits.get("timeout")} if limits.get("timeout") else {},
    }


def input_texts(inputs: dict[str, JobInput]) -> dict[str, str]:
    """What each input substitutes to in the command."""
    return {k: str(v["value"]) if v["type"] == "literal" else v["path"] for k, v in inputs.items()}
