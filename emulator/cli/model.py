"""``amlemu model create|show|list|download``: the parsers; the backend's verbs do the work."""

from __future__ import annotations

from emulator.cli.common import add_show_and_list, verbs
from emulator.models.registry import MODEL_TYPES


def register(groups, common) -> None:
    verb = verbs(groups, "model", "register and fetch models", common)

    p = verb("create", "register a model version from a path, a job output or a YAML file")
    p.add_argument("-f", "--file")
    p.add_argument("-n", "--name")
    p.add_argument("-v", "--version")
    p.add_argument("-p", "--path", help="local path, azureml://jobs/<job>/outputs/..., or runs:/<run>/<path>")
    p.add_argument("-t", "--type", choices=sorted(MODEL_TYPES))
    p.add_argument("-d", "--description")
    p.add_argument("--stage")
    p.add_argument("--set", action="append", metavar="PATH=VALUE")
    add_show_and_list(verb, "model")
    p = verb("download", "download a model version's files")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-v", "--version")
    p.add_argument("-p", "--download-path", default=".")
