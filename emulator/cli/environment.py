"""``amlemu environment create|show|list|build``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from emulator import config
from emulator.cli.common import add_show_and_list, check_fields, verbs
from emulator.cli.yamlfile import apply_sets, load_yaml_file
from emulator.environments import registry
from emulator.environments.views import environment_view
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
    check_fields("environment", data, ENVIRONMENT_FIELDS, args)
    return environment_view(store, registry.create(store, data, base))


def build(args):
    """Build now what the environment needs on the configured runtime; progress on stderr."""
    from emulator.runtime.base import check_runtime
    from emulator.runtime.engine import engine_answers

    store = open_store()
    reference = f"azureml:{args.name}:{args.version}" if args.version else f"azureml:{args.name}@latest"
    resolved = registry.resolve(store, reference, Path.cwd())
    runtime = check_runtime(config.runtime_name())  # docker with no engine: how to start one
    if runtime == "auto":
        runtime = "docker" if engine_answers() else "process"
    started = time.monotonic()
    summary = registry.prepare(resolved, runtime, lambda line: print(line, file=sys.stderr, flush=True))
    return {"environment": resolved["reference"], **summary,
            "seconds": round(time.monotonic() - started, 2), "local_runtime": resolved["note"]}


def register(groups, common) -> None:
    verb = verbs(groups, "environment", "register environments", common)

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
    add_show_and_list(verb, registry.KIND, environment_view)

    p = verb("build", build, "build the environment's image (docker runtime) or virtualenv (process) now")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-v", "--version", help="default: the latest version")
