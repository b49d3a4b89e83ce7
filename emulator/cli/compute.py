"""``amlemu compute ...``: clusters, instances and attached Kubernetes clusters, as ``az ml compute`` spells them."""

from __future__ import annotations

from typing import Any

from emulator.cli.common import verbs
from emulator.cli.yamlfile import apply_sets, load_yaml_file
from emulator.compute import service
from emulator.compute.views import compute_view
from emulator.store import open_store


# -- verbs --------------------------------------------------------------------------------------------------------
_FLAGS = ("name", "type", "size", "tier", "description", "namespace", "min_instances", "max_instances",
          "idle_time_before_scale_down")


def _spec(args) -> dict[str, Any]:
    data, _ = load_yaml_file(getattr(args, "file", None))
    for flag in _FLAGS:
        value = getattr(args, flag, None)
        if value is not None:
            data[flag] = value.lower() if flag == "type" else value
    return apply_sets(data, getattr(args, "set", None))


def create(args):
    store = open_store()
    return compute_view(store, service.create_or_update(store, _spec(args)))


def update(args):
    store = open_store()
    record = service.get(store, args.name)
    current = {k: v for k, v in compute_view(store, record).items()
               if k in ("name", "type", "size", "tier", "description", "min_instances", "max_instances",
                        "idle_time_before_scale_down", "tags", "location")}
    return compute_view(store, service.create_or_update(store, {**current, **_spec(args)}))


def show(args):
    store = open_store()
    return compute_view(store, service.get(store, args.name))


def list_(args):
    store = open_store()
    wanted = (args.type or "").lower()
    return [compute_view(store, r) for r in service.list_computes(store) if not wanted or r["type"] == wanted]


def delete(args):
    service.delete(open_store(), args.name)


def start(args):
    service.start(open_store(), args.name)


def stop(args):
    service.stop(open_store(), args.name)


def restart(args):
    service.restart(open_store(), args.name)


def list_nodes(args):
    return service.list_nodes(open_store(), args.name)


def list_sizes(args):
    return service.list_sizes()


def list_usage(args):
    """As ``az ml compute list-usage`` prints it: each ``Usage``'s own dump (snake_case, like ``list-sizes``)."""
    return service.list_usage(open_store(), args.location)


def register(groups, common) -> None:
    verb = verbs(groups, "compute", "compute clusters, compute instances and attached Kubernetes clusters", common)
    for name, help_ in (("create", "create a compute (type amlcompute, computeinstance or kubernetes)"),
                        ("attach", "attach a Kubernetes cluster (type kubernetes)")):
        p = verb(name, create, help_)
        p.add_argument("-f", "--file")
        p.add_argument("-n", "--name")
        p.add_argument("-t", "--type", help="amlcompute, computeinstance or kubernetes")
        p.add_argument("--size", help="VM size, e.g. Standard_DS3_v2 (`amlemu compute list-sizes`)")
        p.add_argument("--tier", help="dedicated or low_priority")
        p.add_argument("--min-instances", dest="min_instances", type=int)
        p.add_argument("--max-instances", dest="max_instances", type=int)
        p.add_argument("--idle-time-before-scale-down", dest="idle_time_before_scale_down", type=int)
        p.add_argument("--description")
        p.add_argument("--namespace")
        p.add_argument("--resource-id", help="accepted; the cluster is emulated locally")
        p.add_argument("--set", action="append", metavar="PATH=VALUE")
        p.add_argument("--no-wait", action="store_true")
    p = verb("update", update, "change a cluster's scale settings")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("--min-instances", dest="min_instances", type=int)
    p.add_argument("--max-instances", dest="max_instances", type=int)
    p.add_argument("--idle-time-before-scale-down", dest="idle_time_before_scale_down", type=int)
    p.add_argument("--description")
    p.add_argument("--set", action="append", metavar="PATH=VALUE")
    p.add_argument("--no-wait", action="store_true")
    for name, handler, help_ in (("show", show, "show a compute"), ("delete", delete, "delete a compute"),
                                 ("detach", delete, "detach a Kubernetes compute"),
                                 ("start", start, "start a stopped compute instance"),
                                 ("stop", stop, "stop a running compute instance"),
                                 ("restart", restart, "restart a running compute instance"),
                                 ("list-nodes", list_nodes, "the nodes of a cluster (or instance): state, current job")):
        p = verb(name, handler, help_)
        p.add_argument("-n", "--name", required=True)
        p.add_argument("-y", "--yes", action="store_true")
        p.add_argument("--no-wait", action="store_true")
    verb("list", list_, "list computes").add_argument("-t", "--type")
    verb("list-sizes", list_sizes, "the VM sizes amlemu knows: cores, memory, GPUs").add_argument("-l", "--location")
    verb("list-usage", list_usage, "vCPU quota usage per VM family and in total, from the nodes that exist now"
         ).add_argument("-l", "--location")
