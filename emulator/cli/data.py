"""``amlemu data create|show|list|archive|restore|update`` and ``amlemu datastore show|list|create|delete``:
the parsers, with ``az ml``'s flags; the backend's verbs do the work."""

from __future__ import annotations

from emulator.cli.common import verbs
from emulator.data import DATA_TYPES


def _version_or_label(p) -> None:
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-v", "--version")
    p.add_argument("-l", "--label", help="'latest': the newest version that is not archived")


def register(groups, common) -> None:
    verb = verbs(groups, "data", "register and fetch data assets", common)

    p = verb("create", "register a data version from a local path (uploaded), a datastore path or a YAML file")
    p.add_argument("-f", "--file")
    p.add_argument("-n", "--name")
    p.add_argument("-v", "--version")
    p.add_argument("-p", "--path", help="a local file or folder, or azureml://datastores/<datastore>/paths/<path>")
    p.add_argument("-t", "--type", choices=DATA_TYPES)
    p.add_argument("-d", "--description")
    p.add_argument("--datastore", help="where a local path is uploaded (default: workspaceblobstore)")
    p.add_argument("--set", action="append", metavar="PATH=VALUE")

    _version_or_label(verb("show", "show a data version (the latest by default)"))

    p = verb("list", "list data assets (every version of --name)")
    p.add_argument("-n", "--name")
    p.add_argument("-r", "--max-results", type=int)
    archived = p.add_mutually_exclusive_group()
    archived.add_argument("--include-archived", action="store_true", help="list archived data assets too")
    archived.add_argument("--archived-only", action="store_true", help="list only archived data assets")

    _version_or_label(verb("archive", "archive a data version, or with no --version the whole data asset"))
    _version_or_label(verb("restore", "restore an archived data version, or the whole data asset"))

    p = verb("update", "change a data version's description, tags or properties")
    _version_or_label(p)
    p.add_argument("--set", action="append", metavar="PATH=VALUE", help="e.g. description=... or tags.stage=prod")

    verb = verbs(groups, "datastore", "the workspace's datastores (its default three, as folders)", common)
    verb("show", "show a datastore").add_argument("-n", "--name", required=True)
    verb("list", "list the workspace's datastores").add_argument("-r", "--max-results", type=int)
    p = verb("create", "register a datastore (not emulated locally: Azure storage is out of reach)")
    p.add_argument("-f", "--file")
    p.add_argument("-n", "--name")
    p.add_argument("--set", action="append", metavar="PATH=VALUE")
    verb("delete", "remove a datastore (not emulated locally)").add_argument("-n", "--name", required=True)
