"""Registered environments, curated names, and what a job's environment resolves to."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator import naming
from emulator.environments import conda as conda_module
from emulator.environments import curated
from emulator.environments.conda import pip_requirements
from emulator.environments.curated import EnvironmentRef, curated_names
from emulator.errors import ResourceNotFound, ValidationError
from emulator.runtime import select
from emulator.store import WorkspaceStore

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import EnvironmentResolved

KIND = "environment"
DEFAULT_NOTE = "amlemu's own interpreter (scikit-learn, MLflow, ONNX tooling)"
#: an environment's field holding the lines of the files its conda file's pip list names with -r
REQUIREMENT_FILES = "conda_requirement_files"


def _load_conda_file(value: Any, base_path: Path) -> dict | None:
    if value is None or isinstance(value, dict):
        return value
    path = (base_path / str(value)).resolve()
    if not path.is_file():
        raise ValidationError(
            f"conda_file '{value}' not found (looked at {path}). Fix the path; it is relative to the YAML file."
        )
    try:
        import yaml  # here: a job's supervisor, which never reads YAML, starts without it

        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValidationError(f"conda_file {path} is not valid YAML: {exc}")
    if not isinstance(data, dict):
        raise ValidationError(f"conda_file {path} must be a mapping with a 'dependencies' list.")
    return data


def normalize(spec: dict[str, Any], base_path: Path) -> dict[str, Any]:
    """Validate an environment spec (YAML-shaped) and resolve its local paths."""
    spec = {k: v for k, v in spec.items() if v not in (None, {}, [])}
    spec.pop("$schema", None)
    if spec.get("conda_file") is not None:
        spec.update(_conda_fields(spec.pop("conda_file"), base_path, spec.pop(REQUIREMENT_FILES, None)))
    build = spec.get("build")
    if build:
        context = Path(build["path"] if isinstance(build, dict) else build)
        context = (base_path / context).resolve()
        dockerfile = (build.get("dockerfile_path") if isinstance(build, dict) else None) or "Dockerfile"
        if not (context / dockerfile).is_file():
            raise ValidationError(
                f"build context {context} has no {dockerfile}. Point build.path at a folder that holds the Dockerfile."
            )
        spec["build"] = {"path": str(context), "dockerfile_path": dockerfile}
    if spec.get("image") and build:
        raise ValidationError(
            "An environment takes 'image' or 'build' (a docker build context), not both, "
            "as in Azure ML. Remove one of them."
        )
    if not spec.get("image") and not build:
        raise ValidationError(
            "An environment needs 'image' (optionally with 'conda_file') or "
            "'build' (a docker build context). Add one of them."
        )
    return spec


def _conda_fields(conda_ref: Any, base_path: Path, known_files: dict | None = None) -> dict[str, Any]:
    """``conda_file`` (loaded) and the lines of the ``-r`` files its pip list names, checked for what
    pip cannot install (conda-only packages, pip options)."""
    conda = _load_conda_file(conda_ref, base_path)
    # -r files in its pip list are read now, relative to the conda file, and kept with the environment
    folder = (base_path / str(conda_ref)).resolve().parent if isinstance(conda_ref, str) else base_path
    files = conda_module.requirement_files(conda, folder, known_files)
    pip_requirements(conda, files)  # fail now on conda-only packages and pip options
    return {"conda_file": conda, **({REQUIREMENT_FILES: files} if files else {})}


def from_conda_file(path: Path, reference: str) -> EnvironmentResolved:
    """What a conda file on its own runs in (an MLflow model's ``conda.yaml``): a cached virtualenv with
    its pip requirements, on the Python it asks for."""
    return runtime_record(reference, _conda_fields(path.name, path.parent))


def create(store: WorkspaceStore, spec: dict[str, Any], base_path: Path) -> dict[str, Any]:
    """Register a new environment version (auto-incremented when not given)."""
    name = spec.get("name")
    if not name:
        raise ValidationError("An environment needs a 'name'.")
    name = naming.check("environment", name)
    body = normalize(spec, base_path)
    body.pop("name", None)
    version = body.pop("version", None)
    if version is not None:
        version = naming.check("version", version, f"of environment '{name}'")
    with store.transaction() as db:
        version = str(version) if version is not None else store.next_version(db, KIND, name)
        store.insert_asset(db, KIND, name, version, body)
    return store.get_asset(KIND, name, version)


def resolve(store: WorkspaceStore, environment: Any, base_path: Path) -> EnvironmentResolved:
    """What a job's ``environment`` runs in, as a plain record kept in the job spec.

    Returns:
        ``{"reference", "requirements" (None: amlemu's interpreter), "image", "build", "note"}``.
    """
    if isinstance(environment, dict):  # inline environment
        body = normalize(environment, base_path)
        return runtime_record("inline", body)
    if not environment:
        raise ValidationError(
            "The job has no 'environment'. Add one, e.g. environment: azureml:AzureML-sklearn-1.5@latest"
        )
    ref = EnvironmentRef.parse(str(environment))
    if not ref.registry:
        try:
            if ref.label not in (None, "latest"):
                raise ValidationError(
                    f"Environment label '{ref.label}' is not supported locally; use "
                    f"'{ref.name}@latest' or a version ('{ref.name}:1')."
                )
            version = ref.version
            body = store.get_asset(KIND, ref.name, version)
            return runtime_record(f"azureml:{ref.name}:{body['version']}", body)
        except ResourceNotFound:
            if not ref.curated_key:
                raise ResourceNotFound(
                    f"Environment '{environment}' not found: it is neither registered in workspace "
                    f"'{store.name}' nor a curated environment amlemu knows. Register it with "
                    "`amlemu environment create --file env.yml`, or use a curated one: "
                    f"{', '.join(n + '@latest' for n in curated_names()[:4])}, ..."
                ) from None
    key = ref.curated_key
    if key is None:
        raise ResourceNotFound(
            f"Environment '{environment}' is not a curated environment amlemu knows in registry "
            f"'{ref.registry}' (amlemu knows the curated ones of registry '{curated.REGISTRY}': "
            f"{', '.join(curated.environments())}). Use one of those, or register your own with "
            "`amlemu environment create`."
        )
    return curated.resolved_record(str(ref), curated.environments()[key])


def runtime_record(reference: str, body: dict) -> EnvironmentResolved:
    """What an environment (registered or inline) runs in: its pip requirements (None: amlemu's own
    interpreter), the Python its conda file asks for (None: any; the builder says what it got),
    its image or build context, and a note for ``environment show`` and the logs."""
    conda = body.get("conda_file")
    reqs = (pip_requirements(conda, body.get(REQUIREMENT_FILES)) if conda else None) or None
    python = conda_module.python_version(conda) if conda else None
    # on first use: runtime.images (importlib.metadata) costs ~15 ms at start
    from emulator.runtime.images import base_image

    note = []
    if body.get("image"):
        note.append(
            f"image {body['image']} cannot be pulled offline; the process runtime runs on the local "
            f"default environment instead, the docker runtime on the local base image {base_image()}"
        )
    if body.get("build"):
        note.append(
            f"the docker runtime builds its Dockerfile{_from_note(body['build'], base_image())}; "
            "the process runtime uses the local default environment instead"
        )
    if reqs:
        on = f" on Python {python}" if python else ""
        note.append(f"with a cached virtualenv{on}: " + ", ".join(reqs))
    else:
        note.append(DEFAULT_NOTE)
    note.extend(conda_module.notes(conda) if conda else [])
    return {
        "reference": reference,
        "curated": False,
        "requirements": reqs,
        "python": python if reqs else None,
        "image": body.get("image"),
        "build": body.get("build"),
        "note": "; ".join(note),
    }


def _from_note(build: dict, base: str) -> str:
    # on first use: runtime.images (importlib.metadata) costs ~15 ms at start
    from emulator.runtime.images import dockerfile_bases

    try:
        bases = dockerfile_bases((Path(build["path"]) / build["dockerfile_path"]).read_text())
    except OSError:
        return f" (not found at {build['path']} any more)"
    if not bases:
        return ""
    return f", with the local base image {base} in place of {', '.join(bases)} where that cannot be pulled (offline)"


def prepare(resolved: dict[str, Any], runtime: str, log: Callable[[str], None]) -> dict[str, Any]:
    """Build now what a resolved environment needs on ``runtime`` (``process``, ``docker`` or ``auto``).

    Returns:
        ``{"runtime", "image" or "venv", "cached"}``; a docker image also names the FROM
        images the local base stood in for.
    """
    return select(runtime, log).prepare(resolved, log).summary()
