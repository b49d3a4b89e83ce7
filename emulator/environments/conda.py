"""Turn a conda file's dependencies into pip requirements for a virtualenv."""

from __future__ import annotations

import re

from emulator.errors import ValidationError

# conda package name -> pip name (None: provided by the interpreter or by amlemu)
CONDA_TO_PIP: dict[str, str | None] = {
    "python": None,
    "pip": None,
    "setuptools": None,
    "wheel": None,
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "py-xgboost": "xgboost",
    "scikit-learn": "scikit-learn",
    "tensorflow": "tensorflow-cpu",
}
# conda-only packages with no pip equivalent
CONDA_ONLY = {
    "cudatoolkit",
    "cudnn",
    "mkl",
    "mkl-service",
    "libgcc",
    "libgcc-ng",
    "openblas",
    "blas",
    "nccl",
    "cpuonly",
    "pytorch-cuda",
    "_libgcc_mutex",
    "ca-certificates",
    "openssl",
    "libstdcxx-ng",
}
# Azure-only pip packages that amlemu stands in for: tracking goes to the local MLflow store
AZURE_ONLY_PIP = {
    "azureml-mlflow": "mlflow-skinny",
    "azureml-defaults": None,
    "azureml-core": None,
    "azureml-telemetry": None,
    "azureml-inference-server-http": None,
    "azureml-dataset-runtime": None,
}

_CONDA_SPEC = re.compile(
    r"^(?P<name>(?:[A-Za-z0-9_.\-]+::)?[A-Za-z0-9_.\-]+)"
    r"(?:\s*(?P<op>==|>=|<=|=|>|<|!=)\s*(?P<ver>[^\s=]+)|\s+(?P<bare>[^\s=]+))?"
)


def _pip_name(req: str) -> str:
    return re.split(r"[<>=!\[; ]", req.strip(), maxsplit=1)[0].lower()


def pip_requirements(conda: dict) -> list[str]:
    """The pip requirements that stand for a conda file, sorted for hashing.

    Raises:
        ValidationError: for a conda-only package that has no pip equivalent.
    """
    if not isinstance(conda, dict):
        raise ValidationError("conda_file must be a mapping with a 'dependencies' list.")
    reqs: list[str] = []
    for dep in conda.get("dependencies") or []:
        if isinstance(dep, dict):
            for pip_req in dep.get("pip") or []:
                pip_req = str(pip_req).strip()
                name = _pip_name(pip_req)
                if name in AZURE_ONLY_PIP:
                    if AZURE_ONLY_PIP[name]:
                        reqs.append(AZURE_ONLY_PIP[name])
                elif pip_req.startswith(("-", "--")):
                    raise ValidationError(
                        f"pip option '{pip_req}' in conda_file is not supported by amlemu; "
                        "list plain requirements (name and version specifiers) only."
                    )
                else:
                    reqs.append(pip_req)
            continue
        match = _CONDA_SPEC.match(str(dep).strip())
        if not match:
            raise ValidationError(f"Cannot read conda dependency '{dep}'. Write it as name or name=version.")
        name = match["name"].split("::")[-1].lower()
        if name in CONDA_ONLY:
            raise ValidationError(
                f"Conda package '{name}' has no pip equivalent, and amlemu builds environments "
                "with pip. Remove it from the conda_file (CPU-only builds don't need it) or "
                "replace it with its pip package."
            )
        pip_name = CONDA_TO_PIP.get(name, name)
        if pip_name is None:
            continue
        op, ver = match["op"], match["ver"]
        if match["bare"]:  # "numpy 1.26.*": conda's space-separated spec, a prefix match
            op, ver = "=", match["bare"].rstrip(".*") if match["bare"].endswith(".*") else match["bare"]
        if op == "=":  # conda's single '=' is a prefix match
            reqs.append(f"{pip_name}=={ver}" if ver.count(".") >= 2 or "*" in ver else f"{pip_name}=={ver}.*")
        elif op:
            reqs.append(f"{pip_name}{op}{ver}")
        else:
            reqs.append(pip_name)
    return sorted(set(reqs))
