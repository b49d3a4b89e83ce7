"""``amlemu environment create|show|list``."""

from __future__ import annotations

from emulator.cli.views import environment_view
from emulator.cli.yamlfile import apply_sets, load_yaml_file
from emulator.environments import registry
from emulator.errors import ValidationError
from emulator.store import open_store

ENVIRONMENT_FIELDS = {"$schema", "name", "version", "image", "conda_file", "build", "description",
                      "tags", "properties", "os_type", "inference_config", "datastore"}


def create(args):
    store = open_store()
    data, base = load_yaml_file(args.file)
    for field in ("name", "version", "image", "conda_file", "description"):
        if getattr(args, field, None) is not None:
            data[field] = getattr(args, field)
    if args.build_context:
        data["build"] = {"path": args.build_context, "dockerfile_path": args.dockerfile_path or "Dockerfile"}
    apply_sets(data, args.set)
    unknown = set(data) - ENVIRONMENT_FIELDS
    if unknown and args.file:
        from emulator.cli.sdk import sdk_load

        sdk_load("environment", args.file, args.set)
    if unknown:
        raise ValidationError(f"Unknown environment field(s): {', '.join(sorted(unknown))}.")
    return environment_view(store, registry.create(store, data, base))


def show(args):
    store = open_store()
    version = args.version or (None if args.label in (None, "latest") else args.label)
    return environment_view(store, store.get_asset(registry.KIND, args.name, version))


def list_(args):
    store = open_store()
    return [environment_view(store, e) for e in store.list_assets(registry.KIND, args.name)]


def register(groups, common) -> None:
    group = groups.add_parser("environment", help="register environments").add_subparsers(dest="verb", metavar="<verb>")

    def verb(name, handler, help_):
        p = group.add_parser(name, help=help_)
        common(p)
        p.set_defaults(handler=handler)
        return p

    p = verb("create", create, "register an environment version")
    p.add_argument("-f", "--file")
    p.add_argument("-n", "--name")
    p.add_argument("-v", "--version")
    p.add_argument("-i", "--image")
    p.add_argument("-c", "--conda-file")
    p.add_argument("-b", "--build-context")
    p.add_argument("-d", "--dockerfile-path")
    p.add_argument("--description")
    p.add_argument("--set", action="append", metavar="PATH=VALUE")
    p = verb("show", show, "show an environment version (latest by default)")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-v", "--version")
    p.add_argument("-l", "--label")
    p = verb("list", list_, "list environments")
    p.add_argument("-n", "--name")
