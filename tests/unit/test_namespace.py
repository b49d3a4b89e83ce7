"""The public ``amlemu`` namespace: what users import, cheap to import, one version everywhere."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest


def test_import_amlemu_pulls_in_no_azure_sdk():
    code = "import sys, amlemu; print(any(m.startswith('azure') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_one_version_for_the_package_the_cli_and_the_module():
    import amlemu

    cli = subprocess.run([sys.executable, "-m", "emulator.cli.main", "--version"], capture_output=True, text=True)
    assert cli.returncode == 0
    assert cli.stdout.strip() == f"amlemu {amlemu.__version__}" == f"amlemu {version('amlemu')}"


def test_connect_and_testing_come_from_the_namespace(amlemu_home):
    import amlemu
    from backends.local import LocalBackend

    assert isinstance(amlemu.connect(), LocalBackend)
    assert "local" in amlemu.known_backends()
    from amlemu.testing import run_load

    assert callable(run_load) and amlemu.testing.run_load is run_load
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        amlemu.nope  # noqa: B018
