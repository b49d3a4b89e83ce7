"""``amlemu model create|show|list|download``."""

from __future__ import annotations

import sys
from pathlib import Path

from emulator.cli.common import add_show_and_list, check_fields, verbs
from emulator.cli.yamlfile import apply_sets, load_yaml_file
from emulator.models import registry
from emulator.models.views import model_view
from emulator.store import open_store

MODEL_FIELDS = {"$schema", "name", "version", "path", "type", "description", "tags", "properties",
                "stage", "flavors", "job_name"}


def create(args):
    store = open_store()
    data, base = load_yaml_file(args.file)
    for field in ("name", "version", "path", "type", "description", "stage"):
        if getattr(args, field, None) is not None:
            data[field] = getattr(args, field)
    apply_sets(data, args.set)
    check_fields("model", data, MODEL_FIELDS, args)
    return model_view(store, registry.create_or_update(store, data, base))


def download(args):
    store = open_store()
    target = registry.download(store, args.name, args.version, Path(args.download_path))
    print(f"Downloaded model {args.name} to {target}", file=sys.stderr)


def register(groups, common) -> None:
    verb = verbs(groups, "model", "register and fetch models", common)

    p = verb("create", create, "register a model version from a path, a job output or a YAML file")
    p.add_argument("-f", "--file")
    p.add_argument("-n", "--name")
    p.add_argument("-v", "--version")
    p.add_argument("-p", "--path", help="local path, azureml://jobs/<job>/outputs/..., or runs:/<run>/<path>")
    p.add_argument("-t", "--type", choices=sorted(registry.MODEL_TYPES))
    p.add_argument("-d", "--description")
    p.add_argument("--stage")
    p.add_argument("--set", action="append", metavar="PATH=VALUE")
    add_show_and_list(verb, registry.KIND, model_view)
    p = verb("download", download, "download a model version's files")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-v", "--version")
    p.add_argument("-p", "--download-path", default=".")
