"""The plugin's teardown across runs: ``--aml-keep`` keeps a failed test's endpoint (and says where it is), Ctrl-C
still tears down, and two xdist workers never share a state folder, a workspace or a port."""

from __future__ import annotations

import json
import urllib.request

import pytest

from emulator.testing import leaks
from tests.harness import project

pytest_plugins = ["pytester"]

KEEP_SUITE = """
import pytest
from harness_record import record

def test_a_kept_after_failure(aml_client, aml_deploy):
    ep = aml_deploy(model="model", endpoint_name="kept")
    record("kept", workspace=aml_client.workspace_name, uri=ep.scoring_uri, key=ep.key)
    assert False, "fails on purpose"

def test_b_deleted_after_success(aml_client, aml_deploy):
    ep = aml_deploy(model="model", endpoint_name="passing")
    record("passing", workspace=aml_client.workspace_name)

def test_c_interrupted(aml_client, aml_deploy):
    aml_deploy(model="model", endpoint_name="interrupted")
    record("interrupted", workspace=aml_client.workspace_name)
    raise KeyboardInterrupt
"""


def test_keep_keeps_a_failed_tests_endpoint_and_ctrl_c_still_tears_down(pytester, monkeypatch, iris_model):
    record_file = project.make(pytester, monkeypatch, iris_model)
    pytester.makepyfile(test_suite=KEEP_SUITE)
    result, basetemp = project.run(pytester, "--aml-keep")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    created = json.loads(record_file.read_text())
    home = basetemp / "amlemu-home0"  # the first of mktemp("amlemu-home")
    kept = home / "workspaces" / created["kept"]["workspace"]
    try:
        result.stdout.fnmatch_lines(
            [
                "*amlemu: kept after failing tests (--aml-keep)*",
                f"test_suite.py::test_a_kept_after_failure: AMLEMU_HOME={home} "
                f"AMLEMU_WORKSPACE={created['kept']['workspace']}",
                f"  endpoint kept: {created['kept']['uri']} (deployment blue)",
            ]
        )
        # the kept endpoint still serves, with its key, after pytest has exited
        request = urllib.request.Request(
            created["kept"]["uri"],
            data=b'{"data": [[5.1, 3.5, 1.4, 0.2]]}',
            headers={"Authorization": f"Bearer {created['kept']['key']}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read()) == [0]
        # a passing test's endpoint and an interrupted test's endpoint were deleted all the same
        project.nothing_runs_under(home / "workspaces" / created["passing"]["workspace"])
        project.nothing_runs_under(home / "workspaces" / created["interrupted"]["workspace"])
    finally:
        leaks.stop_workspace(home, kept.name)
    project.nothing_runs_under(home)


PARALLEL_SUITE = """
import pytest

@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_same_names_on_every_worker(aml_client, aml_deploy, n):
    ep = aml_deploy(model="model", endpoint_name="iris")  # the same endpoint name in every test
    assert ep.invoke({"data": [[5.1, 3.5, 1.4, 0.2]]}) == (200, [0])
"""


def test_two_xdist_workers_never_clash(pytester, monkeypatch, iris_model):
    project.make(pytester, monkeypatch, iris_model)
    pytester.makepyfile(test_suite=PARALLEL_SUITE)
    result, basetemp = project.run(pytester, "-n", "2")
    result.assert_outcomes(passed=4)
    homes = sorted(basetemp.glob("*/amlemu-home0"))
    assert len(homes) == 2 and homes[0].parent != homes[1].parent  # one state folder per worker
    for home in homes:
        project.nothing_runs_under(home)
