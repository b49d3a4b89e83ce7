"""Which server a replica runs, and what amlemu's server adds to an environment (the full path, with real
environments and servers, is tests/e2e/test_user_inference_server.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from emulator.endpoints.launch import names_user_server, serving_path, serving_requirements


@pytest.mark.parametrize(
    "requirements",
    [
        ["scikit-learn", "azureml-inference-server-http==1.4.0"],
        ["azureml_inference_server_http>=1.0"],
        ["AzureML.Defaults==1.55.0"],
        ["azureml-defaults[extra] ; python_version >= '3.8'"],
        ["  azureml-inference-server-http"],
    ],
)
def test_requirements_that_bring_the_inference_server(requirements):
    assert names_user_server(requirements)


@pytest.mark.parametrize(
    "requirements",
    [None, [], ["scikit-learn==1.5.2", "inference-schema[numpy-support]"], ["azureml-inference-server-http-extra"]],
)
def test_requirements_that_do_not(requirements):
    assert not names_user_server(requirements)


def test_serving_packages_that_need_a_newer_python_are_added_only_there():
    """granian exists for Python >= 3.10 only: an environment on 3.9 gets waitress alone, not an unsolvable pin."""
    reqs = {r.split(";")[0].split(">")[0].split("<")[0].split("=")[0]: r for r in serving_requirements()}
    assert reqs["granian"].endswith('; python_version >= "3.10"')
    assert ";" not in reqs["flask"] and ";" not in reqs["waitress"]


def test_the_gunicorn_configuration_takes_the_secret_out_of_the_environment():
    """Loaded as gunicorn loads it (in the user's interpreter, from the serving copy): the secret leaves
    os.environ at once, and only the hooks and a gunicorn setting are lower-case public names."""
    probe = (
        "import os, emulator.serving.user_server as u\n"
        "print('AMLEMU_REPLICA_SECRET' in os.environ, u._secret == 's3', u.control_socket_disable)\n"
        "print(sorted(n for n in vars(u) if n[:1].islower() and not n.startswith('_')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(serving_path())!r})\n{probe}"],
        env={"AMLEMU_REPLICA_SECRET": "s3"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0] == "False True True"
    # gunicorn reads any module name matching one of its settings as that setting: only these may be lower case
    assert out[1] == str(["annotations", "control_socket_disable", "on_starting", "os", "post_worker_init"])
