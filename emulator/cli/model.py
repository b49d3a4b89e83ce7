"""``amlemu model create|show|list|download``."""

from __future__ import annotations

import sys
from pathlib import Path

from emulator.cli.views import model_view
from emulator.cli.yamlfile import apply_sets, load_yaml_file
from emulator.errors import ValidationError
from emulator.models import registry
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
    unknown = set(data) - MODEL_FIELDS
    if unknown and args.file:
        from emulator.cli.sdk import sdk_load

        sdk_load("model", args.file, args.set)  # raises with the SDK's own message
    if unknown:
        raise ValidationError(f"Unknown model field(s): {', '.join(sorted(unknown))}.")
    return model_view(store, registry.create_or_update(store, data, base))


def show(args):
    store = open_store()
    version = args.version or (None if args.label in (None, "latest") else args.label)
    return model_view(store, store.get_asset(registry.KIND, args.name, version))


def list_(args):
    store = open_store()
    return [model_view(store, m) for m in store.list_assets(registry.KIND, args.name)]


def download(args):
    store = open_store()
    target = registry.download(store, args.name, args.version, Path(args.download_path))
    print(f"Downloaded model {args.name} to {target}", file=sys.stderr)


def register(groups, common) -> None:
    group = groups.add_parser("model", help="register and fetch models").add_subparsers(dest="verb", metavar="<verb>")

    def verb(name, handler, help_):
        p = group.add_parser(name, help=help_)
        common(p)
        p.set_defaults(handler=handler)
        return p

    p = verb("create", create, "register a model version from a path, a job output or a YAML file")
    p.add_argument("-f", "--file")
    p.add_argument("-n", "--name")
    p.add_argument("-v", "--version")
    p.add_argument("-p", "--path", help="local path, azureml://jobs/<job>/outputs/..., or runs:/<run>/<path>")
    p.add_argument("-t", "--type", choices=sorted(registry.MODEL_TYPES))
    p.add_argument("-d", "--description")
    p.add_argument("--stage")
    p.add_argument("--set", action="append", metavar="PATH=VALUE")
    p = verb("show", show, "show a model version (latest by default)")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-v", "--version")
    p.add_argument("-l", "--label")
    p = verb("list", list_, "list models (every version of --name)")
    p.add_argument("-n", "--name")
    p = verb("download", download, "download a model version's files")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-v", "--version")
    p.add_argument("-p", "--download-path", default=".")
