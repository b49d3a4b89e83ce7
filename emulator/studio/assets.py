"""The Models and Environments areas: registered versions as ``az ml ... list`` shows them, a model's download,
the curated environments and what each environment runs in here."""

from __future__ import annotations

import tempfile
import zipfile

from flask import Blueprint, render_template, send_file

from emulator.environments import curated
from emulator.environments import registry as environment_registry
from emulator.environments.views import curated_view, environment_view
from emulator.models import registry as model_registry
from emulator.models.views import model_view
from emulator.runtime import builds
from emulator.studio.app import store

blueprint = Blueprint("assets", __name__)
SPOOL_BYTES = 16 * 1024 * 1024


@blueprint.get("/models")
def model_list():
    models = [model_view(store(), record) for record in store().list_assets(model_registry.KIND)]
    return render_template("models.html", models=models)


@blueprint.get("/models/<name>/<version>/download")
def model_download(name: str, version: str):
    """The model version's files as one zip (``az ml model download`` copies the same files)."""
    model = store().get_asset(model_registry.KIND, name, version)
    source = model_registry.files(store(), model)
    archive = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(source.rglob("*")) if source.is_dir() else [source]:
            if path.is_file():
                zf.write(path, str(path.relative_to(source.parent)))
    archive.seek(0)
    return send_file(archive, mimetype="application/zip", as_attachment=True, download_name=f"{name}-{version}.zip")


def _build_status(env: dict) -> str:
    """Whether a registered environment was built here, as ``amlemu environment build`` would say."""
    resolved = environment_registry.runtime_record(f"azureml:{env['name']}:{env['version']}", env)
    if not resolved["requirements"]:
        return "no build needed"
    found = builds.build_record(resolved)
    if not found or not found.get("builds"):
        return "not built yet"
    return ", ".join(sorted({b.get("runtime", "?") for b in found["builds"]})) + " build ready"


@blueprint.get("/environments")
def environment_list():
    registered = [
        {**environment_view(store(), record), "build_status": _build_status(record)}
        for record in store().list_assets(environment_registry.KIND)
    ]
    curated_envs = [curated_view(name) for name in curated.environments()]
    return render_template("environments.html", registered=registered, curated=curated_envs, mode=curated.mode())
