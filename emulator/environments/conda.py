"""Turn a conda file's dependencies into pip requirements for a virtualenv or an image.

What a conda file asks for, and what amlemu does with it:

- pip packages (the ``pip:`` list) are installed as listed, Azure's own (``azureml-defaults``,
  ``azureml-inference-server-http``, ``azureml-mlflow``, ...) included, as Azure installs them;
  ``-r requirements.txt`` there reads that file, relative to the conda file, when the environment is
  registered (its lines are kept with the environment);
- conda packages become their pip packages (``pytorch`` is ``torch``, ``py-xgboost`` is
  ``xgboost``, ...), conda's version specs pip's (``numpy=1.26`` is ``numpy==1.26.*``);
- ``python=3.X`` picks the interpreter (see :func:`python_version`), not a package;
- conda's system libraries (``openssl``, ``libgcc-ng``, ``ca-certificates``, ...; what ``conda env
  export`` writes) are the interpreter's own here: dropped, and :func:`notes` says so;
- a conda-only package with no pip equivalent (the CUDA toolkit and friends) is refused, naming it.
"""

from __future__ import annotations

import re
from pathlib import Path

from emulator.errors import ValidationError

# conda package name -> pip name (None: provided by the interpreter or its venv)
CONDA_TO_PIP: dict[str, str | None] = {
    "python": None,
    "pip": None,
    "setuptools": None,
    "wheel": None,
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "py-xgboost": "xgboost",
    "py-xgboost-cpu": "xgboost",
    "scikit-learn": "scikit-learn",
    "tensorflow": "tensorflow-cpu",
    "matplotlib-base": "matplotlib",
    "py-opencv": "opencv-python-headless",
    "opencv": "opencv-python-headless",
    "pytables": "tables",
    "msgpack-python": "msgpack",
    "pyqt": "PyQt5",
}
# conda-only packages with no pip equivalent, and why a CPU build here has no use for them
CONDA_ONLY: dict[str, str] = {
    **dict.fromkeys(
        ("cudatoolkit", "cudnn", "nccl", "pytorch-cuda", "cuda-version", "cuda-nvcc", "cuda-runtime", "cupti"),
        "NVIDIA's CUDA libraries as conda packages; amlemu runs on the CPU",
    ),
    "magma-cuda": "MAGMA built for CUDA; amlemu runs on the CPU",
}
# conda's system libraries and markers: what the interpreter and the wheels bring here
SYSTEM_PACKAGES = {
    "_libgcc_mutex",
    "_openmp_mutex",
    "blas",
    "bzip2",
    "ca-certificates",
    "certifi-system",
    "cpuonly",  # pytorch's "CPU build" marker: amlemu builds CPU torch anyway
    "ld_impl_linux-64",
    "libblas",
    "libcblas",
    "libffi",
    "libgcc",
    "libgcc-ng",
    "libgfortran-ng",
    "libgfortran5",
    "libgomp",
    "liblapack",
    "libnsl",
    "libsqlite",
    "libstdcxx-ng",
    "libuuid",
    "libxcrypt",
    "libzlib",
    "ncurses",
    "nomkl",
    "openblas",
    "openssl",
    "readline",
    "sqlite",
    "tk",
    "xz",
    "zlib",
}

_CONDA_SPEC = re.compile(
    r"^(?P<name>(?:[A-Za-z0-9_.\-]+::)?[A-Za-z0-9_.\-]+)"
    r"(?:\s*(?P<op>==|>=|<=|=|>|<|!=)\s*(?P<ver>[^\s=]+)|\s+(?P<bare>[^\s=]+))?"
)
_REQUIREMENT_FILE = re.compile(r"^(?:-r|--requirement)(?:\s*=?\s*)(?P<path>\S.*)$")
_MAX_NESTING = 5  # -r inside -r: deep enough for real layouts, and no loop goes on forever


def _check(conda: object) -> dict:
    if not isinstance(conda, dict):
        raise ValidationError("conda_file must be a mapping with a 'dependencies' list.")
    return conda


def _pip_lists(conda: dict) -> list[list]:
    return [list(dep.get("pip") or []) for dep in conda.get("dependencies") or [] if isinstance(dep, dict)]


def _conda_specs(conda: dict):
    """(name without channel, regex match) for each conda (non-pip) dependency."""
    for dep in conda.get("dependencies") or []:
        if isinstance(dep, dict):
            continue
        match = _CONDA_SPEC.match(str(dep).strip())
        if not match:
            raise ValidationError(f"Cannot read conda dependency '{dep}'. Write it as name or name=version.")
        yield match["name"].split("::")[-1].lower(), match


def requirement_files(conda: dict, folder: Path, known: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """The lines of each file a ``-r`` in the conda file's pip list names (and each ``-r`` inside those),
    read relative to ``folder`` (the conda file's), keyed by the reference as written.

    ``known`` holds files read before (a registered environment's): those are not read again.

    Raises:
        ValidationError: for a file that does not exist or cannot be read, naming it and the fix.
    """
    files: dict[str, list[str]] = {}
    known = known or {}

    def read(lines: list, base: Path, depth: int, where: str) -> None:
        for line in lines:
            match = _REQUIREMENT_FILE.match(str(line).strip())
            if not match:
                continue
            ref = match["path"].strip().strip("'\"")
            if ref in files:
                continue
            if ref in known:
                files[ref] = known[ref]
            else:
                if depth >= _MAX_NESTING:
                    raise ValidationError(
                        f"'-r {ref}' in {where} is nested more than {_MAX_NESTING} files deep. "
                        "List the packages in fewer requirement files."
                    )
                path = (base / ref).resolve()
                try:
                    files[ref] = path.read_text().splitlines()
                except OSError as exc:
                    reason = "does not exist" if not path.exists() else f"cannot be read ({exc.strerror})"
                    raise ValidationError(
                        f"The pip list in {where} refers to '-r {ref}', and {path} {reason}. "
                        f"A -r path is relative to the file that names it: put {Path(ref).name} there, "
                        "or list its packages in the conda file's pip section instead."
                    ) from None
            read(files[ref], (base / ref).resolve().parent, depth + 1, ref)

    for pip_list in _pip_lists(_check(conda)):
        read(pip_list, Path(folder), 0, "the conda file")
    return files


def pip_requirements(conda: dict, files: dict[str, list[str]] | None = None) -> list[str]:
    """The pip requirements that stand for a conda file, sorted for hashing.

    Args:
        conda: the conda file's content.
        files: the lines of the files its ``-r`` lines name (see :func:`requirement_files`).

    Raises:
        ValidationError: for a conda-only package that has no pip equivalent, a pip option amlemu
            does not take, or a ``-r`` file that was not read.
    """
    files = files or {}
    reqs: list[str] = []

    def add_pip(lines: list, where: str) -> None:
        for line in lines:
            pip_req = str(line).split(" #", 1)[0].strip()
            if not pip_req or pip_req.startswith("#"):
                continue
            match = _REQUIREMENT_FILE.match(pip_req)
            if match:
                ref = match["path"].strip().strip("'\"")
                if ref not in files:
                    raise ValidationError(
                        f"'-r {ref}' in {where} was not read when the environment was registered: register it "
                        "again (amlemu environment create) from the folder that holds the file."
                    )
                add_pip(files[ref], ref)
            elif pip_req.startswith("-"):
                raise ValidationError(
                    f"pip option '{pip_req}' in {where} is not supported by amlemu: it installs from the "
                    "configured package index and its own caches. List plain requirements (name and version "
                    "specifiers) or -r requirements.txt."
                )
            else:
                reqs.append(pip_req)

    for pip_list in _pip_lists(_check(conda)):
        add_pip(pip_list, "the conda file's pip section")
    for name, match in _conda_specs(conda):
        if name in CONDA_ONLY:
            raise ValidationError(
                f"Conda package '{name}' exists only on conda channels ({CONDA_ONLY[name]}) and has no pip "
                "equivalent: amlemu builds environments from pip packages. Remove it from the conda file's "
                "dependencies (a CPU build does not need it)."
            )
        pip_name = CONDA_TO_PIP.get(name, name)
        if pip_name is None or name in SYSTEM_PACKAGES:
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


def python_version(conda: dict) -> str | None:
    """The Python minor version a conda file asks for (``python=3.9``, ``python==3.10.12``,
    ``python 3.12.*``): ``"3.9"``; None when it names none, or only a range (``python>=3.8``)."""
    for name, match in _conda_specs(_check(conda)):
        if name != "python":
            continue
        version = match["bare"] or (match["ver"] if match["op"] in ("=", "==") else None)
        parts = re.match(r"^(\d+)\.(\d+)", version or "")
        return f"{parts[1]}.{parts[2]}" if parts else None
    return None


def notes(conda: dict) -> list[str]:
    """What of a conda file amlemu leaves to the system, in words for ``environment show``."""
    system = sorted(name for name, _ in _conda_specs(_check(conda)) if name in SYSTEM_PACKAGES)
    if not system:
        return []
    return [f"conda system packages {', '.join(system)} are not installed: the interpreter and the wheels bring theirs"]
