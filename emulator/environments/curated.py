"""Azure ML's curated environments, as Azure builds them, and what amlemu runs in their place.

Each curated environment amlemu knows is described in ``curated.json`` beside this module: the
Python version and every package of the list Azure publishes for it (the environment's context
folder in the public azureml-assets repository; the file names the path and commit it was read
from). A job on a curated environment gets every package of that list:

- **fast** mode (the default): amlemu's own interpreter when it already holds every package of
  the list (any version), else a cached virtualenv (per machine) with Azure's list at Azure's pins
  (fitted to the host's Python by the builder where a pin has no release for it) and amlemu's job
  tooling (:data:`TOOLING`: ONNX export and runtime, MLflow) resolved together with them, unpinned:
  a superset of Azure's image, so amlemu's samples and tests that export ONNX run on it too;
- **exact** mode (``AMLEMU_CURATED=exact`` or ``curated: exact`` in ``.amlemu.yml``): Azure's versions
  on Azure's Python, built into a cached virtualenv.

What cannot be had here (a CUDA build) is replaced by the requirement the file's ``here`` names,
and the environment's note says so.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from emulator import config
from emulator.errors import ResourceNotFound, ValidationError

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import EnvironmentResolved

DATA = Path(__file__).with_name("curated.json")
PREFIX = "AzureML-"  # a curated environment's name in a workspace: AzureML-<name in the azureml registry>
REGISTRY = "azureml"  # the registry Azure publishes curated environments in
MODES = ("fast", "exact")
#: what fast mode adds to Azure's list, unpinned (the resolver fits them around Azure's pins): amlemu's
#: samples export models to ONNX and score them with ONNX Runtime, which Azure's lists do not name.
#: (A layered environment, amlemu's interpreter under or over an overlay of the missing packages, was
#: tried: either order mixes two resolutions and breaks imports, e.g. azureml-core against a newer
#: azure-mgmt-resource, or the inference server against another opentelemetry.)
TOOLING = ("skl2onnx", "onnx", "onnxruntime", "mlflow-skinny", "pyyaml")

_REGISTRY_REF = re.compile(
    r"^azureml://registries/(?P<registry>[^/]+)/environments/(?P<name>[^/]+)"
    r"(?:/versions/(?P<version>[^/]+)|/labels/(?P<label>[^/]+))?/?$"
)
_NORMALIZE = re.compile(r"[-_.]+")


@dataclass(frozen=True)
class CuratedEnvironment:
    """One curated environment: Azure's Python and package list, and what amlemu installs instead where
    Azure's cannot be had here.

    Attributes:
        name: the name in the ``azureml`` registry (``sklearn-1.5``); in a workspace it is ``AzureML-`` + name.
        python: Azure's Python version (``"3.10"``), None when unknown.
        packages: distribution -> Azure's pip specifier (``"~=1.5.0"``; ``""`` unpinned; ``"latest"`` the
            newest release when Azure builds the image), in Azure's order.
        conda: the packages Azure installs from conda rather than pip.
        here: distribution -> the requirement amlemu installs in its place.
        adds: distribution -> specifier of what amlemu installs besides Azure's list (the note says why).
        python_here: the Python exact mode builds on when it cannot be Azure's (a package's only build here).
        source, commit: where in azureml-assets the list was read.
        notes: what amlemu does differently, and why.
        gpu_only: Azure publishes this environment for GPUs only; amlemu installs its CPU equivalent.
        emulated_by_amlemu: the environment runs amlemu's own code (AutoML trials), not Azure's packages.
    """

    name: str
    python: str | None
    packages: dict[str, str] = field(default_factory=dict)
    conda: tuple[str, ...] = ()
    here: dict[str, str] = field(default_factory=dict)
    adds: dict[str, str] = field(default_factory=dict)
    python_here: str | None = None
    source: str | None = None
    commit: str | None = None
    notes: tuple[str, ...] = ()
    gpu_only: bool = False
    emulated_by_amlemu: bool = False

    @property
    def workspace_name(self) -> str:
        return PREFIX + self.name

    def azure_requirement(self, package: str) -> str:
        """Azure's requirement for ``package`` as pip reads it (``latest`` and unpinned: the bare name)."""
        spec = self.packages[package]
        return package if spec in ("", "latest") else package + spec

    def requirements(self) -> list[str]:
        """The pip requirements a job on this environment gets: Azure's, with ``here``'s in their place,
        then ``adds``."""
        azure = [self.here.get(name) or self.azure_requirement(name) for name in self.packages]
        return azure + [name + spec for name, spec in self.adds.items()]

    def distributions(self) -> list[str]:
        """The distribution each requirement installs (``here``'s name where it replaces Azure's)."""
        azure = [requirement_name(self.here[name]) if name in self.here else name for name in self.packages]
        return azure + list(self.adds)

    def exact_python(self) -> str | None:
        return self.python_here or self.python

    def source_url(self) -> str | None:
        if not self.source:
            return None
        return f"{catalogue()['repository']}/blob/{self.commit or 'main'}/{self.source}"


def requirement_name(requirement: str) -> str:
    """``torch`` for ``torch==2.13.0+cpu`` (or ``tensorflow[and-cuda]==2.16.2``)."""
    return re.split(r"[\s<>=!~\[;@]", requirement.strip(), maxsplit=1)[0]


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return _NORMALIZE.sub("-", name).lower()


@functools.cache
def catalogue() -> dict:
    """The parsed ``curated.json``."""
    return json.loads(DATA.read_text())


@functools.cache
def environments() -> dict[str, CuratedEnvironment]:
    """Every curated environment amlemu knows, by its name in the ``azureml`` registry."""
    raw = catalogue()["environments"]
    out = {}
    for name, entry in raw.items():
        base = raw[entry["same_as"]] if "same_as" in entry else entry
        notes = tuple(n for n in (entry.get("note"), base.get("note") if base is not entry else None) if n)
        out[name] = CuratedEnvironment(
            name=name,
            python=entry.get("python", base.get("python")),
            packages=dict(base.get("packages") or {}),
            conda=tuple(base.get("conda") or ()),
            here=dict(base.get("here") or {}),
            adds=dict(base.get("adds") or {}),
            python_here=base.get("python_here"),
            source=base.get("source"),
            commit=base.get("commit"),
            notes=notes,
            gpu_only=bool(base.get("gpu_only")),
            emulated_by_amlemu=bool(base.get("emulated_by_amlemu")),
        )
    return out


def get(name: str) -> CuratedEnvironment | None:
    """The curated environment named ``name`` in the ``azureml`` registry, if amlemu knows it."""
    return environments().get(name)


def require(name: str) -> CuratedEnvironment:
    """The curated environment ``name`` (its name in the ``azureml`` registry).

    Raises:
        ResourceNotFound: amlemu knows no curated environment of that name, with the names it knows.
    """
    env = get(name)
    if env is None:
        raise ResourceNotFound(
            f"Curated environment '{name}' is not one amlemu knows. Known (in registry '{REGISTRY}'; in a "
            f"workspace with the prefix {PREFIX}): {', '.join(environments())}."
        )
    return env


def host_python() -> str:
    """The host interpreter's minor version (``"3.11"``)."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def curated_names() -> list[str]:
    """The workspace names of the curated environments (``AzureML-sklearn-1.5``, ...)."""
    return [env.workspace_name for env in environments().values()]


def mode() -> str:
    """``fast`` (default) or ``exact``: ``AMLEMU_CURATED``, then ``curated:`` in ``.amlemu.yml``."""
    value = (config.setting("curated") or "fast").strip().lower()
    if value not in MODES:
        raise ValidationError(
            f"curated: {value!r} is not a mode for curated environments: use 'fast' (amlemu's interpreter when "
            "it holds the environment's packages, else a virtualenv on it) or 'exact' (Azure's versions and "
            "Python), in AMLEMU_CURATED or the curated key of .amlemu.yml."
        )
    return value


def installed_versions(site_dirs: Iterable[Path] | None = None) -> dict[str, str]:
    """Normalized distribution name -> version, of what is installed in ``site_dirs`` (default: the
    running interpreter's site-packages, which a job on amlemu's interpreter sees), read from the
    ``.dist-info`` folder names: one listing per folder, no metadata parsed."""
    found: dict[str, str] = {}
    if site_dirs is None:
        paths = sysconfig.get_paths()
        site_dirs = dict.fromkeys(Path(paths[key]) for key in ("purelib", "platlib"))
    folders = list(site_dirs)
    for folder in folders:
        try:
            entries = [e for e in folder.iterdir() if e.name.endswith((".dist-info", ".egg-info"))]
        except OSError:
            continue
        for entry in entries:
            stem = entry.name.rsplit(".", 1)[0]
            name, _, version = stem.partition("-")
            found.setdefault(normalize(name), version)
    return found


@functools.cache
def host_versions() -> dict[str, str]:
    """:func:`installed_versions` of amlemu's own interpreter, read once per process."""
    return installed_versions()


def missing_on_host(env: CuratedEnvironment) -> list[str]:
    """The distributions of ``env``'s list that amlemu's own interpreter lacks (any version counts)."""
    installed = host_versions()
    return [name for name in env.distributions() if normalize(name) not in installed]


class EnvironmentRef:
    """A parsed environment reference: ``[azureml:]name[:version|@label]`` or a registry URI."""

    def __init__(self, name: str, version: str | None = None, label: str | None = None, registry: str | None = None):
        self.name, self.version, self.label, self.registry = name, version, label, registry

    @classmethod
    def parse(cls, text: str) -> EnvironmentRef:
        text = text.strip()
        match = _REGISTRY_REF.match(text)
        if match:
            return cls(match["name"], match["version"], match["label"], match["registry"])
        if text.startswith("azureml:"):
            text = text[len("azureml:") :]
        if "@" in text:
            name, label = text.split("@", 1)
            return cls(name, label=label)
        if ":" in text:
            name, version = text.split(":", 1)
            return cls(name, version=version)
        return cls(text)

    @property
    def curated_key(self) -> str | None:
        """The curated environment's name in the ``azureml`` registry, if this names one amlemu knows."""
        if self.registry:
            name = self.name if self.registry == REGISTRY else None
        elif self.name.startswith(PREFIX):
            name = self.name[len(PREFIX) :]
        else:
            name = None
        return name if name is not None and get(name) is not None else None

    def __str__(self) -> str:
        if self.registry:
            tail = f"/versions/{self.version}" if self.version else f"/labels/{self.label or 'latest'}"
            return f"azureml://registries/{self.registry}/environments/{self.name}{tail}"
        return self.name + (f":{self.version}" if self.version else f"@{self.label}" if self.label else "")


def resolved_record(reference: str, env: CuratedEnvironment) -> EnvironmentResolved:
    """What a job on ``env`` runs in (an ``EnvironmentResolved`` record), in the configured mode."""
    how = describe(env, mode())
    return {
        "reference": reference,
        "curated": True,
        "requirements": how.requirements,
        "python": how.python,
        "image": None,
        "build": None,
        "note": "; ".join((how.summary, *env.notes)),
    }


@dataclass(frozen=True)
class LocalRuntime:
    """How amlemu runs a curated environment in a mode: the requirements (None: amlemu's interpreter),
    the Python to build on (None: the host's), and one line saying so."""

    mode: str
    requirements: list[str] | None
    python: str | None
    summary: str
    missing_on_host: tuple[str, ...] = ()


def describe(env: CuratedEnvironment, how: str) -> LocalRuntime:
    """What a job on ``env`` gets in mode ``how`` (``fast`` or ``exact``)."""
    host = host_python()
    if env.emulated_by_amlemu:
        return LocalRuntime(how, None, None, "amlemu's own interpreter, running amlemu's own code")
    if how == "exact":
        python = env.exact_python()
        return LocalRuntime(
            how,
            env.requirements(),
            python,
            f"exact mode: a cached virtualenv with Azure's list, Azure's versions, on Python {python}",
        )
    missing = tuple(missing_on_host(env))
    if not missing:
        return LocalRuntime(
            how,
            None,
            None,
            f"fast mode: amlemu's own interpreter (Python {host}), which holds every package of Azure's list",
        )
    shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    named = {normalize(name) for name in env.distributions()}
    tooling = [name for name in TOOLING if normalize(name) not in named]
    return LocalRuntime(
        how,
        env.requirements() + tooling,
        None,
        f"fast mode: a cached virtualenv on Python {host} with Azure's list at Azure's pins (amlemu's own "
        f"interpreter lacks {shown}) and amlemu's job tooling ({', '.join(tooling)}), resolved together; a pin "
        f"with no release for Python {host} is replaced by the nearest one that has one (exact mode, "
        "AMLEMU_CURATED=exact, builds Azure's list alone on Azure's Python)",
        missing,
    )
