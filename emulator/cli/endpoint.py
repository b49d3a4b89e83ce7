"""``amlemu online-endpoint ...`` and ``amlemu online-deployment ...``, as ``az ml`` spells them."""

from __future__ import annotations

from emulator.cli.common import verbs


def register(groups, common) -> None:
    verb = verbs(groups, "online-endpoint", "online endpoints: scoring URIs with auth and traffic rules", common)
    for name, help_ in (("create", "create an endpoint"), ("update", "update traffic, mirror traffic, tags")):
        p = verb(name, help_)
        p.add_argument("-f", "--file")
        p.add_argument("-n", "--name")
        p.add_argument("--auth-mode", dest="auth_mode", choices=["key", "aml_token", "aad_token"])
        p.add_argument("--set", action="append", metavar="PATH=VALUE")
        p.add_argument("--local", action="store_true", help="a local endpoint, as azure-ai-ml's local=True")
        p.add_argument("--no-wait", action="store_true")
        if name == "update":
            p.add_argument("-r", "--traffic", help='"blue=90 green=10"')
            p.add_argument("--mirror-traffic", help='"green=10"')
    p = verb("show", "show an endpoint")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("--local", action="store_true")
    p = verb("list", "list endpoints")
    p.add_argument("--local", action="store_true")
    p = verb("delete", "delete an endpoint and its deployments", confirm=True)
    p.add_argument("-n", "--name", required=True)
    p.add_argument("--no-wait", action="store_true")
    p.add_argument("--local", action="store_true")
    p = verb("invoke", "call the endpoint's scoring URI")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-r", "--request-file", required=True)
    p.add_argument("-d", "--deployment-name")
    p.add_argument("--local", action="store_true")
    p = verb("get-credentials", "show the keys (key auth) or a token (aml_token auth)")
    p.add_argument("-n", "--name", required=True)
    p = verb("regenerate-keys", "replace the primary or secondary key")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("--key-type", default="primary", choices=["primary", "secondary"])
    p.add_argument("--no-wait", action="store_true")
    p = verb("export-postman", "print a Postman collection (v2.1) for the endpoint")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-r", "--request-file", help="sample body (default: a row of zeros fitted to the model)")

    verb = verbs(groups, "online-deployment", "deployments: replicas serving a model behind an endpoint", common)
    for name, help_ in (
        ("create", "create a deployment"),
        ("update", "update a deployment (e.g. --set instance_count=3)"),
    ):
        p = verb(name, help_)
        p.add_argument("-f", "--file")
        p.add_argument("-n", "--name")
        p.add_argument("-e", "--endpoint-name", dest="endpoint_name")
        p.add_argument("--set", action="append", metavar="PATH=VALUE")
        p.add_argument("--no-wait", action="store_true")
        p.add_argument("--local", action="store_true")
        p.add_argument("--skip-script-validation", action="store_true")
        if name == "create":
            p.add_argument("--all-traffic", action="store_true", help="route 100%% of the endpoint's traffic here")
    for name, help_ in (("show", "show a deployment"), ("delete", "delete a deployment")):
        p = verb(name, help_, confirm=name == "delete")
        p.add_argument("-n", "--name", required=True)
        p.add_argument("-e", "--endpoint-name", dest="endpoint_name", required=True)
        p.add_argument("--local", action="store_true")
    p = verb("list", "list an endpoint's deployments")
    p.add_argument("-e", "--endpoint-name", dest="endpoint_name", required=True)
    p.add_argument("--local", action="store_true")
    p = verb("get-logs", "the last lines of a deployment's scoring-server log")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-e", "--endpoint-name", dest="endpoint_name", required=True)
    p.add_argument("-l", "--lines", type=int, default=100)
    p.add_argument("-c", "--container", choices=["inference-server", "storage-initializer"])
    p.add_argument("--local", action="store_true")
