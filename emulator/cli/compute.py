"""``amlemu compute ...``: clusters, instances and attached Kubernetes clusters, as ``az ml compute`` spells them."""

from __future__ import annotations

from emulator.cli.common import verbs


def register(groups, common) -> None:
    verb = verbs(groups, "compute", "compute clusters, compute instances and attached Kubernetes clusters", common)
    for name, help_ in (
        ("create", "create a compute (type amlcompute, computeinstance or kubernetes)"),
        ("attach", "attach a Kubernetes cluster (type kubernetes)"),
    ):
        p = verb(name, help_)
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
        p.add_argument("--resource-id", help="the cluster to attach (kept as given by the local backend)")
        p.add_argument("--set", action="append", metavar="PATH=VALUE")
        p.add_argument("--no-wait", action="store_true")
    p = verb("update", "change a cluster's scale settings")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("--min-instances", dest="min_instances", type=int)
    p.add_argument("--max-instances", dest="max_instances", type=int)
    p.add_argument("--idle-time-before-scale-down", dest="idle_time_before_scale_down", type=int)
    p.add_argument("--description")
    p.add_argument("--set", action="append", metavar="PATH=VALUE")
    p.add_argument("--no-wait", action="store_true")
    for name, help_ in (
        ("show", "show a compute"),
        ("delete", "delete a compute"),
        ("detach", "detach a Kubernetes compute"),
        ("start", "start a stopped compute instance"),
        ("stop", "stop a running compute instance"),
        ("restart", "restart a running compute instance"),
        ("list-nodes", "the nodes of a cluster (or instance): state, current job"),
    ):
        p = verb(name, help_, confirm=name in ("delete", "detach"))  # az ml asks before these two
        p.add_argument("-n", "--name", required=True)
        if name not in ("show", "list-nodes"):
            p.add_argument("--no-wait", action="store_true")
    verb("list", "list computes").add_argument("-t", "--type")
    verb("list-sizes", "the VM sizes amlemu knows: cores, memory, GPUs").add_argument("-l", "--location")
    verb("list-usage", "vCPU quota usage per VM family and in total, from the nodes that exist now").add_argument(
        "-l", "--location"
    )
