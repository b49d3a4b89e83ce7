"""``az``'s global arguments on every ``amlemu`` verb: ``--query``, ``-o``, verbosity, the workspace
arguments, the delete prompt and unknown arguments, as Azure ML's shell scripts use them.

Every command runs as a separate ``python -m emulator.cli.main`` process (the ``cli`` fixture), with
no terminal on stdin unless a test gives it a pseudo-terminal.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import textwrap

import pytest
import requests
import yaml

from tests.conftest import SAMPLES

DEPLOY = SAMPLES / "iris" / "deploy"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def computes(cli):
    """A cluster and an instance (records only: no process runs for either)."""
    create = ("compute", "create", "--size", "Standard_DS3_v2", "-o", "none")
    cli.run(*create, "--name", "cpu-cluster", "--type", "amlcompute", "--max-instances", "2")
    cli.run(*create, "--name", "dev-box", "--type", "computeinstance")
    return cli


def tsv_field(value) -> str:
    """knack's rule for one tsv field: a nested list is its length, a nested dict empty, the rest str()."""
    return str(len(value)) if isinstance(value, list) else "" if isinstance(value, dict) else str(value)


# -- --query and -o tsv -----------------------------------------------------------------------------------------------
def test_query_and_tsv_on_show_and_list(computes):
    cli = computes
    assert cli.run("compute", "show", "-n", "cpu-cluster", "--query", "name", "-o", "tsv").stdout == "cpu-cluster\n"
    # the global arguments go before or after the verb's own
    assert cli.run("compute", "show", "--query", "max_instances", "-o", "tsv", "-n", "cpu-cluster").stdout == "2\n"
    assert cli.run("compute", "list", "--query", "[].name", "-o", "tsv").stdout == "cpu-cluster\ndev-box\n"
    # a projection keeps the query's order; a missing value is None in a row
    rows = cli.run("compute", "list", "--query", "[].{size:size, name:name, max:max_instances}", "-o", "tsv").stdout
    assert rows == "Standard_DS3_v2\tcpu-cluster\t2\nStandard_DS3_v2\tdev-box\tNone\n"
    # without a query, each item's values in key order: nested lists as their length, nested dicts empty
    listed = cli.json("compute", "list")
    expected = "".join("\t".join(tsv_field(v) for _, v in sorted(item.items())) + "\n" for item in listed)
    assert cli.run("compute", "list", "-o", "tsv").stdout == expected
    assert any(isinstance(v, bool) for v in listed[0].values())  # so the rows above hold True/False
    # a bare boolean is lower case, one in a row is Python's; a null result prints nothing at all
    shown = ["compute", "show", "-n", "cpu-cluster"]
    assert cli.run(*shown, "--query", "enable_node_public_ip", "-o", "tsv").stdout == "true\n"
    assert cli.run(*shown, "--query", "[[enable_node_public_ip, tier]]", "-o", "tsv").stdout == "True\tdedicated\n"
    for fmt in ("tsv", "json", "yaml", "table"):
        nothing = cli.run(*shown, "--query", "description", "-o", fmt)
        assert (nothing.returncode, nothing.stdout) == (0, "")
    # the JSON default: keys sorted, as az prints them
    text = cli.run(*shown).stdout
    document = json.loads(text)
    assert text == json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert list(document) == sorted(document) and document["name"] == "cpu-cluster"
    assert cli.json(*shown, "--query", "{n:name, m:max_instances}") == {"n": "cpu-cluster", "m": 2}


def test_a_bad_query_is_refused(computes):
    parse = computes.run("compute", "show", "-n", "cpu-cluster", "--query", "{a:", check=False)
    assert parse.returncode == 2 and parse.stdout == ""
    assert parse.stderr.startswith("usage: amlemu compute show")
    assert "argument --query: invalid jmespath_type value: '{a:'" in parse.stderr
    run = computes.run("compute", "show", "-n", "cpu-cluster", "--query", "length(nope)", check=False)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.startswith("ERROR: Invalid jmespath query supplied for `--query`: In function length()")
    assert "To learn more about --query" in run.stderr and "Traceback" not in run.stderr


# -- -o table, yaml, jsonc, none --------------------------------------------------------------------------------------
def test_table_output(computes):
    cli = computes
    # az ml's own columns for compute list
    assert cli.run("compute", "list", "-o", "table").stdout == textwrap.dedent("""\
        Name         Compute type     State      Instance type
        -----------  ---------------  ---------  ---------------
        cpu-cluster  amlcompute       Succeeded  Standard_DS3_v2
        dev-box      computeinstance  Running    Standard_DS3_v2
        """)
    # a query's projection gives the columns, in its order; an absent value is an empty cell
    assert cli.run("compute", "list", "--query", "[].{Name:name, Max:max_instances}", "-o", "table").stdout == (
        "Name         Max\n-----------  -----\ncpu-cluster  2\ndev-box\n"
    )
    # a show: every scalar field, keys sorted and capitalised, without id/type and nested values
    shown = cli.json("compute", "show", "-n", "cpu-cluster")
    lines = cli.run("compute", "show", "-n", "cpu-cluster", "-o", "table").stdout.splitlines()
    headers = lines[0].split()
    expected = [k[0].upper() + k[1:] for k in sorted(shown) if k not in ("id", "type") and shown[k] is not None]
    assert headers == expected and "Id" not in headers and "Type" not in headers
    assert set(lines[1]) == {"-", " "} and len(lines) == 3
    assert lines[2].split() == [str(shown[k]) for k in sorted(shown) if k[0].upper() + k[1:] in headers]
    # no column to show: az's message
    empty = cli.run(
        "compute", "show", "-n", "cpu-cluster", "--query", "{id: id, type: name}", "-o", "table", check=False
    )
    assert empty.returncode == 1 and empty.stdout == ""
    assert empty.stderr.startswith("ERROR: Table output unavailable. Use the --query option")


def test_yaml_jsonc_and_none(computes):
    cli = computes
    shown = cli.json("compute", "show", "-n", "cpu-cluster")
    text = cli.run("compute", "show", "-n", "cpu-cluster", "-o", "yaml").stdout
    assert yaml.safe_load(text) == shown
    assert [line.split(":")[0] for line in text.splitlines() if not line.startswith(" ")] == sorted(shown)
    assert yaml.safe_load(cli.run("compute", "list", "--query", "[].name", "-o", "yaml").stdout) == [
        "cpu-cluster",
        "dev-box",
    ]
    # colour only on a terminal: through a pipe, jsonc and yamlc are json and yaml exactly
    plain = cli.run("compute", "show", "-n", "cpu-cluster").stdout
    assert cli.run("compute", "show", "-n", "cpu-cluster", "-o", "jsonc").stdout == plain
    assert cli.run("compute", "show", "-n", "cpu-cluster", "-o", "yamlc").stdout == text
    assert "\x1b" not in plain + text
    none = cli.run("compute", "show", "-n", "cpu-cluster", "-o", "none")
    assert (none.stdout, none.stderr) == ("", "")
    assert cli.run("compute", "show", "-n", "cpu-cluster", "-o", "TSV", "--query", "tier").stdout == "dedicated\n"
    bad = cli.run("compute", "show", "-n", "cpu-cluster", "-o", "xml", check=False)
    assert bad.returncode == 2 and "argument -o/--output: invalid choice: 'xml'" in bad.stderr


def test_jsonc_is_coloured_on_a_terminal(computes):
    """stdout and stderr on a pseudo-terminal: jsonc carries colour codes, and without them it is the json."""
    leader, follower = pty.openpty()
    args = [sys.executable, "-m", "emulator.cli.main", "compute", "show", "-n", "cpu-cluster", "-o", "jsonc"]
    env = {**os.environ, "AMLEMU_HOME": str(computes.home)}
    proc = subprocess.Popen(args, cwd=computes.cwd, env=env, stdout=follower, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    coloured = b"".join(chunks).decode().replace("\r\n", "\n")
    assert "\x1b[" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == computes.run("compute", "show", "-n", "cpu-cluster").stdout


# -- verbosity --------------------------------------------------------------------------------------------------------
def test_only_show_errors_verbose_and_debug(computes):
    cli = computes
    # the delete prompt's warning is a warning: --only-show-errors drops it, the error stays
    loud = cli.run("compute", "delete", "-n", "dev-box", check=False)
    assert loud.returncode == 1 and loud.stderr.splitlines() == [
        "WARNING: Unable to prompt for confirmation as no tty available. Use --yes.",
        "ERROR: Operation cancelled.",
    ]
    quiet = cli.run("compute", "delete", "-n", "dev-box", "--only-show-errors", check=False)
    assert quiet.returncode == 1 and quiet.stderr.splitlines() == ["ERROR: Operation cancelled."]
    verbose = cli.run("compute", "list", "--query", "[].name", "-o", "tsv", "--verbose")
    assert verbose.stdout == "cpu-cluster\ndev-box\n" and verbose.stderr.startswith("INFO: Command ran in ")
    debug = cli.run("compute", "list", "-o", "none", "--debug")
    assert "DEBUG: amlemu.cli: Command arguments: " in debug.stderr and debug.stdout == ""
    both = cli.run("compute", "list", "--only-show-errors", "--verbose", check=False)
    assert both.returncode == 1 and both.stdout == ""
    assert both.stderr.strip() == "ERROR: --only-show-errors can't be used together with --debug or --verbose"
    # --debug still shows a failure's traceback
    missing = cli.run("compute", "show", "-n", "nope", "--debug", check=False)
    assert missing.returncode == 1 and "Traceback" in missing.stderr and "ResourceNotFound" in missing.stderr


# -- workspace arguments ----------------------------------------------------------------------------------------------
def test_workspace_arguments_are_checked_locally(computes):
    cli = computes
    for args in (["-g", "amlemu"], ["-g", "AMLEMU", "--subscription", SUBSCRIPTION], ["--subscription", SUBSCRIPTION]):
        assert cli.run("compute", "show", "-n", "cpu-cluster", *args, "--query", "name", "-o", "tsv").stdout == (
            "cpu-cluster\n"
        )
    group = cli.run("compute", "show", "-n", "cpu-cluster", "-g", "my-rg", "-w", "my-ws", check=False)
    assert group.returncode == 1 and group.stdout == ""
    error = group.stderr.strip()
    assert error.startswith("ERROR: (ResourceGroupNotFound) Resource group 'my-rg' could not be found")
    for needed in ("'amlemu'", SUBSCRIPTION, "-g/--resource-group", "-w/--workspace-name", "AMLEMU_BACKEND=azure"):
        assert needed in error, needed
    subscription = cli.run("compute", "list", "--subscription", "my-sub", check=False)
    assert subscription.returncode == 1
    assert subscription.stderr.startswith("ERROR: (SubscriptionNotFound) Subscription 'my-sub' could not be found")
    assert SUBSCRIPTION in subscription.stderr and "--subscription" in subscription.stderr
    # -w selects a workspace: another one has no computes, the default one still has both
    assert cli.json("compute", "list", "-w", "other-ws", "-g", "amlemu") == []
    assert cli.run("compute", "list", "--query", "length(@)", "-o", "tsv").stdout == "2\n"
    # nothing was created for the refused resource group's workspace
    assert not (cli.home / "workspaces" / "my-ws").exists()


# -- the delete prompt ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "verb",
    [
        ("compute", "delete", "-n", "dev-box"),
        ("compute", "detach", "-n", "dev-box"),
        ("online-endpoint", "delete", "-n", "dev-box"),
        ("online-deployment", "delete", "-n", "dev-box", "-e", "ep"),
    ],
    ids=lambda v: " ".join(v[:2]),
)
def test_deleting_without_yes_and_without_a_terminal_deletes_nothing(computes, verb):
    proc = computes.run(*verb, check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines()[-1] == "ERROR: Operation cancelled."
    assert "Use --yes" in proc.stderr
    assert [c["name"] for c in computes.json("compute", "list")] == ["cpu-cluster", "dev-box"]


def test_yes_deletes(computes):
    computes.run("compute", "delete", "-n", "dev-box", "--yes", "-o", "none")
    computes.run("compute", "delete", "-y", "-n", "cpu-cluster", "-o", "none")
    assert computes.json("compute", "list") == []
    # only the verbs az ml asks about take --yes
    proc = computes.run("compute", "show", "-n", "dev-box", "--yes", check=False)
    assert proc.returncode == 2 and "unrecognized arguments: --yes" in proc.stderr


def run_on_a_terminal(cli, answer: str, *args: str) -> tuple[int, str, str]:
    """``amlemu *args`` with a pseudo-terminal on stdin, typing ``answer`` at the prompt."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli.main", *args],
            cwd=cli.cwd,
            env={**os.environ, "AMLEMU_HOME": str(cli.home)},
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(leader, answer.encode())
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(leader)
        os.close(follower)
    return proc.returncode, out, err


def test_a_terminal_is_asked_and_its_answer_decides(computes):
    code, out, err = run_on_a_terminal(computes, "n\n", "compute", "delete", "-n", "dev-box")
    assert code == 1 and out == "Are you sure you want to perform this operation? (y/n): "
    assert err == "ERROR: Operation cancelled.\n"
    assert [c["name"] for c in computes.json("compute", "list")] == ["cpu-cluster", "dev-box"]
    # anything but y or n asks again
    code, out, err = run_on_a_terminal(computes, "maybe\ny\n", "compute", "delete", "-n", "dev-box", "-o", "none")
    assert code == 0, err
    assert out == "Are you sure you want to perform this operation? (y/n): " * 2
    assert [c["name"] for c in computes.json("compute", "list")] == ["cpu-cluster"]


# -- unknown arguments, help, version ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, usage",
    [
        (("online-endpoint", "show", "--bogus", "-n", "x"), "usage: amlemu online-endpoint show "),
        (("compute", "delete", "-n", "x", "--yes", "--bogus", "1"), "usage: amlemu compute delete "),
        (("job", "list", "extra"), "usage: amlemu job list "),
    ],
)
def test_an_unknown_argument_prints_the_verb_s_usage(cli, args, usage):
    proc = cli.run(*args, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(usage), proc.stderr
    prog = usage.removeprefix("usage: ").strip()
    assert f"{prog}: error: unrecognized arguments: {' '.join(a for a in args if a in ('--bogus', '1', 'extra'))}" in (
        proc.stderr
    )


def test_help_and_version(cli):
    helped = cli.run("online-endpoint", "delete", "--help")
    assert helped.stdout.startswith("usage: amlemu online-endpoint delete")
    assert "Global Arguments:" in helped.stdout
    for flag in ("--query JMESPATH", "--only-show-errors", "--verbose", "--debug", "--subscription", "-y, --yes"):
        assert flag in helped.stdout, flag
    assert "{json,jsonc,none,table,tsv,yaml,yamlc}" in helped.stdout
    assert cli.run("--help").stdout.startswith("usage: amlemu")
    assert cli.run("--version").stdout.startswith("amlemu ")


# -- the classic script -----------------------------------------------------------------------------------------------
SCRIPT = """\
set -euo pipefail
amlemu() { "$PYTHON" -m emulator.cli.main "$@"; }
NAME=iris-ep
amlemu model create --name iris --path "$MODEL" -o none
amlemu online-endpoint create --file "$DEPLOY/endpoint.yml" -o none
amlemu online-deployment create --file "$DEPLOY/blue-deployment.yml" --all-traffic -o none
ENDPOINT_URI=$(amlemu online-endpoint show -n $NAME --query scoring_uri -o tsv)
ENDPOINT_KEY=$(amlemu online-endpoint get-credentials -n $NAME -o tsv --query primaryKey)
STATE=$(amlemu online-deployment show -n blue -e $NAME --query provisioning_state -o tsv)
printf '%s\\n%s\\n%s\\n' "$ENDPOINT_URI" "$ENDPOINT_KEY" "$STATE" > captured.txt
"""


def test_the_classic_az_ml_script_runs_unmodified(cli, iris_model):
    script = cli.cwd / "deploy.sh"
    script.write_text(SCRIPT)
    env = {**os.environ, "AMLEMU_HOME": str(cli.home), "PYTHON": sys.executable, "MODEL": str(iris_model)}
    env["DEPLOY"] = str(DEPLOY)
    done = subprocess.run(["bash", str(script)], cwd=cli.cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    uri, key, state = (cli.cwd / "captured.txt").read_text().splitlines()
    assert uri == cli.json("online-endpoint", "show", "-n", "iris-ep")["scoring_uri"]
    assert uri.startswith("http://127.0.0.1:") and uri.endswith("/score")
    assert key == cli.json("online-endpoint", "get-credentials", "-n", "iris-ep")["primaryKey"] and key
    assert state == "Succeeded"
    rows = {"data": [[5.1, 3.5, 1.4, 0.2], [6.2, 3.4, 5.4, 2.3]]}
    answer = requests.post(uri, json=rows, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert answer.status_code == 200 and answer.json() == [0, 2]
    assert requests.post(uri, json=rows, timeout=30).status_code == 401  # the key captured is the one that counts
