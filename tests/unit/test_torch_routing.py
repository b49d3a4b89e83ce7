"""torch in an environment is only ever a CPU build: the wheel in pip's find-links, never CUDA's from the index."""

from __future__ import annotations

import subprocess
import sys

import pytest

from emulator.errors import EmulatorError
from emulator.runtime import installs, pins

CPU_WHEEL = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"


@pytest.fixture
def find_links(tmp_path, monkeypatch):
    """pip configured with one find-links folder holding a CPU torch wheel (its name is all the plan reads)."""
    (tmp_path / CPU_WHEEL).write_bytes(b"")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    for variable in ("UV_FIND_LINKS", "AMLEMU_PINS"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def test_a_torch_pin_becomes_the_cpu_build_with_a_warning(find_links):
    plan = installs.torch_plan(["torch==2.2.*", "numpy"], "3.11", strict=False)
    assert plan.requirements == ["torch==2.13.0+cpu", "numpy"]
    assert plan.constraints == ["torch==2.13.0+cpu"]  # a package that depends on torch gets it too
    assert plan.substitutions == [
        "torch ==2.2.* → 2.13.0+cpu (the CPU build on this machine; amlemu never downloads a CUDA torch)"
    ]
    unpinned = installs.torch_plan(["torch", "torchvision"], "3.11", strict=False)
    assert unpinned.requirements == ["torch", "torchvision"] and unpinned.substitutions == []


def test_strict_pins_refuse_another_torch(find_links):
    with pytest.raises(EmulatorError) as caught:
        installs.torch_plan(["torch==2.2.2"], "3.11", strict=True)
    assert "torch 2.13.0+cpu" in str(caught.value) and "never downloads a CUDA torch" in str(caught.value)


def test_without_a_cpu_wheel_for_the_python_uv_routes_torch_to_cpu_builds(find_links):
    plan = installs.torch_plan(["torch"], "3.9", strict=False)  # the wheel on disk is for 3.11
    assert plan.constraints == [] and plan.uv_args == ["--torch-backend", "cpu"]


def test_this_machines_resolution_of_torch_is_the_cpu_wheel(tmp_path):
    """With this machine's configuration, plain ``torch`` and ``torchvision`` resolve (metadata only, nothing
    downloaded) to the CPU torch in pip's find-links, and nothing of CUDA comes along."""
    plan = installs.torch_plan(["torch", "torchvision"], f"{sys.version_info[0]}.{sys.version_info[1]}", strict=False)
    assert plan.constraints, "this machine keeps a CPU torch wheel in pip's find-links (PIP_FIND_LINKS, pip.conf)"
    (tmp_path / "constraints.txt").write_text("\n".join(plan.constraints) + "\n")
    proc = subprocess.run(
        [installs.uv_bin(), "pip", "compile", "-", "--no-header", "--no-annotate", "--python", sys.executable,
         "--constraint", str(tmp_path / "constraints.txt"), *pins.package_indexes().uv_args()],
        input="\n".join(plan.requirements),
        capture_output=True, text=True, env=installs.installer_env(), timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert plan.constraints[0] in proc.stdout
    assert "nvidia" not in proc.stdout and "cuda" not in proc.stdout, proc.stdout
