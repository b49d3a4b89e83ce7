"""Fitting an environment's pinned requirements to the Python it is built on, and the words for it.

Azure's examples pin versions that exist only for the Python their conda file asks for
(``inference-schema==1.5.1`` requires Python < 3.11). When amlemu builds on another Python (see
:mod:`emulator.runtime.pythons`), :func:`fit` asks the package index, before anything is
installed, which versions have a distribution for that Python on this platform (Requires-Python
and wheel tags), and replaces each pin that has none by the nearest version that has one,
preferring the nearest later one. Every replacement comes back as a line for the build log,
``environment show`` and the job or deployment log. ``AMLEMU_PINS=strict`` (``pins: strict`` in
``.amlemu.yml``) refuses instead.

The index is read with unearth (pip's package finder as a library: PEP 503/691 simple pages, local
folders, Requires-Python, wheel tags), one request per package, all in parallel, through the same
index configuration the builder uses (:func:`package_indexes`).
"""

from __future__ import annotations

import configparser
import logging
import os
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from emulator import config
from emulator.errors import EmulatorError, ValidationError

if TYPE_CHECKING:
    from unearth import Link, PackageFinder
    from unearth.evaluator import Evaluator

_PARALLEL = 16  # requests in flight at once: one per package; a conda file names a dozen or two


def strict_pins() -> bool:
    """True when pins must be honoured as written (``AMLEMU_PINS=strict`` or ``pins: strict``)."""
    value = (config.setting("pins") or "substitute").strip().lower()
    if value not in ("strict", "substitute"):
        raise ValidationError(
            f"pins: {value!r} is not a pin policy: use 'strict' (refuse a pin that does not exist for the "
            "environment's Python) or 'substitute' (the default: use the nearest version that does), in "
            "AMLEMU_PINS or the pins key of .amlemu.yml."
        )
    return value == "strict"


def python_substitution(requested: str, used: str) -> str:
    """The warning line for an environment built on another Python than its conda file asks for."""
    return f"python {requested} → {used} (no Python {requested} on this machine)"


def python_refusal(requested: str, used: str) -> EmulatorError:
    """The error for a Python version that is not on this machine, when pins are strict."""
    return EmulatorError(
        f"The environment asks for Python {requested} and there is no Python {requested} on this machine "
        f"(amlemu looked on PATH, among uv-managed and pyenv Pythons, in /usr/bin and /usr/local/bin, and in "
        f"AMLEMU_PYTHONS). Install Python {requested} (for example `uv python install {requested}`), or let "
        f"amlemu build on Python {used} with substituted pins by removing AMLEMU_PINS=strict (pins: strict "
        "in .amlemu.yml).",
        code="EnvironmentBuildFailed",
    )


@dataclass(frozen=True)
class PackageIndexes:
    """Where packages come from, merged from uv's environment variables and pip's configuration.

    Attributes:
        index_url: the default index, or None for the installers' own default.
        extra_index_urls: indexes searched besides the default one (pip's semantics: the best
            version across all of them wins).
        find_links: folders or pages of distributions searched besides the indexes.
        no_index: True when only ``find_links`` may be searched.
    """

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False

    def uv_args(self) -> list[str]:
        """The same configuration as arguments to ``uv pip install`` / ``uv pip compile``."""
        args = ["--no-index"] if self.no_index else []
        if self.index_url and not self.no_index:
            args += ["--index-url", self.index_url]
        for url in () if self.no_index else self.extra_index_urls:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            args += ["--find-links", link]
        if self.extra_index_urls and not self.no_index:
            # pip picks the best version across every index; uv by default stops at the first index
            # that has the package, so a local extra index with one wheel would hide the rest
            args += ["--index-strategy", "unsafe-best-match"]
        return args


def package_indexes() -> PackageIndexes:
    """The index configuration in force: ``UV_DEFAULT_INDEX``/``UV_INDEX_URL``, ``UV_INDEX``/
    ``UV_EXTRA_INDEX_URL``, ``UV_FIND_LINKS`` and ``UV_NO_INDEX`` first, then pip's (``PIP_*``
    variables over pip's configuration files: ``index-url``, ``extra-index-url``, ``find-links``,
    ``no-index``)."""
    pip = _pip_settings()
    env = os.environ
    index_url = env.get("UV_DEFAULT_INDEX") or env.get("UV_INDEX_URL") or pip.get("index-url")
    extras = [_strip_index_name(u) for u in (env.get("UV_INDEX", "") + " " + env.get("UV_EXTRA_INDEX_URL", "")).split()]
    extras += pip.get("extra-index-url", "").split()
    links = env.get("UV_FIND_LINKS", "").replace(",", " ").split() + pip.get("find-links", "").split()
    no_index = _truthy(env.get("UV_NO_INDEX")) or _truthy(pip.get("no-index"))
    return PackageIndexes(
        index_url=index_url or None,
        extra_index_urls=tuple(dict.fromkeys(extras)),
        find_links=tuple(dict.fromkeys(links)),
        no_index=no_index,
    )


def _strip_index_name(entry: str) -> str:
    """``UV_INDEX`` entries may be ``name=url``."""
    name, sep, url = entry.partition("=")
    return url if sep and "://" not in name and "/" not in name else entry


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _pip_settings() -> dict[str, str]:
    """pip's index settings: its configuration files in pip's order (later files win; ``[install]``
    over ``[global]``), then ``PIP_*`` environment variables."""
    files: list[Path] = []
    config_file = os.environ.get("PIP_CONFIG_FILE")
    if config_file != os.devnull:
        xdg_dirs = os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
        files += [Path(d, "pip", "pip.conf") for d in reversed(xdg_dirs.split(os.pathsep)) if d]
        files.append(Path("/etc/pip.conf"))
        files.append(Path.home() / ".pip" / "pip.conf")
        files.append(Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config", "pip", "pip.conf"))
        files.append(Path(sys.prefix, "pip.conf"))
        if config_file:
            files.append(Path(config_file))
    settings: dict[str, str] = {}
    keys = ("index-url", "extra-index-url", "find-links", "no-index")
    for path in files:
        parser = configparser.RawConfigParser()
        try:
            parser.read(path)
        except (OSError, configparser.Error):
            continue  # pip would refuse an unreadable file itself; the build says so
        for section in ("global", "install"):
            for key in keys:
                value = parser.get(section, key, fallback=None) or parser.get(
                    section, key.replace("-", "_"), fallback=None
                )
                if value is not None:
                    settings[key] = value
    for key in keys:
        value = os.environ.get("PIP_" + key.upper().replace("-", "_"))
        if value is not None:
            settings[key] = value
    return settings


@dataclass
class Fitted:
    """The requirements to install, and one line per pin that was replaced.

    Attributes:
        requirements: the input, in order, with each replaced pin rewritten.
        substitutions: ``"inference-schema 1.5.1 → 1.7.1 (1.5.1 requires Python <3.11; ...)"``.
        notes: packages that could not be checked (the index did not answer): passed unchanged.
    """

    requirements: list[str]
    substitutions: list[str]
    notes: list[str] = field(default_factory=list)


def fit(requirements: list[str], python: str, *, strict: bool) -> Fitted:
    """``requirements`` fitted to Python ``python`` ("3.11" or "3.11.7").

    Each named requirement is looked up on the package index. A package the index does not have,
    and a pin no version of which exists, are refused. A pin or range none of whose versions
    installs on ``python`` is replaced by the nearest version that does (refused when ``strict``).
    Lines that are not requirements (options, paths, URLs) and requirements whose marker excludes
    ``python`` pass unchanged.

    Raises:
        EmulatorError: code ``EnvironmentBuildFailed``, naming the package and the fix.
    """
    target = _python_tuple(python)
    parsed = [_parse(line, target) for line in requirements]
    names = sorted({canonicalize_name(req.name) for req in parsed if req is not None})
    if not names:
        return Fitted(list(requirements), [])
    finders = _finders(target)
    if finders is None:
        return Fitted(
            list(requirements), [], ["no package index and no find-links are configured: pins are not checked"]
        )
    finder, matcher, sources = finders
    with ThreadPoolExecutor(max_workers=min(_PARALLEL, len(names))) as pool:
        releases = dict(zip(names, pool.map(lambda name: _releases(finder, matcher, name), names)))
    fitted: list[str] = []
    substitutions: list[str] = []
    notes: list[str] = []
    for line, req in zip(requirements, parsed):
        found = releases[canonicalize_name(req.name)] if req is not None else None
        if req is None or found is None:
            fitted.append(line)
        elif isinstance(found, Exception):
            notes.append(f"could not ask the package index about {req.name} ({found}): its pin is not checked")
            fitted.append(line)
        else:
            new_version, line_note = _fit_one(req, found, target=target, sources=sources, strict=strict)
            fitted.append(line if new_version is None else _rewrite(req, new_version))
            substitutions += [line_note] if new_version is not None else []
    return Fitted(fitted, substitutions, notes)


@dataclass
class _Release:
    """One version of a package on the index: its files, and whether one installs on the target.

    A compiled package (one that ships wheels built for an ABI or a platform) fits only through a
    wheel: building it from its source distribution needs a compiler, headers and minutes, and
    for an old release on a new Python it fails. A pure-Python package fits through either. Only
    the releases a decision needs are evaluated (numpy has thousands of files).
    """

    version: Version
    evaluator: Evaluator = field(repr=False)
    links: list[Link] = field(default_factory=list)

    @property
    def yanked(self) -> bool:
        return all(link.yank_reason is not None for link in self.links)

    @cached_property
    def sdist_fits(self) -> bool:
        return any(self.evaluator.evaluate_link(link) for link in self.links if not link.is_wheel)

    @cached_property
    def fits(self) -> bool:
        wheels = [link for link in self.links if link.is_wheel]
        if any(self.evaluator.evaluate_link(link) for link in wheels):
            return True
        compiled = any(tag.abi != "none" or tag.platform != "any" for w in wheels for tag in _wheel_tags(w.filename))
        return self.sdist_fits and not compiled


def _python_tuple(python: str) -> tuple[int, ...]:
    try:
        parts = tuple(int(p) for p in str(python).split(".")[:3])
    except ValueError:
        parts = ()
    if len(parts) < 2:
        raise ValidationError(f"Python version {python!r} is not major.minor[.micro] (for example 3.11).")
    if parts == tuple(sys.version_info[:2]):
        return tuple(sys.version_info[:3])  # Requires-Python may name a micro release (">=3.11.2")
    return parts


def _shown(target: tuple[int, ...]) -> str:
    return f"{target[0]}.{target[1]}"


def _parse(line: str, target: tuple[int, ...]) -> Requirement | None:
    """The requirement on ``line`` when it names an index package that applies to ``target``, else None."""
    try:
        req = Requirement(line.split(" #", 1)[0].strip())
    except (InvalidRequirement, InvalidSpecifier):
        return None  # an option (-r, --index-url), a path or a bare URL: the installer's business
    if req.url:
        return None
    if req.marker is not None:
        version = ".".join(map(str, target))
        env = {"python_version": _shown(target), "python_full_version": version if len(target) > 2 else f"{version}.0"}
        if not req.marker.evaluate(env):
            return None
    return req


def _finders(target: tuple[int, ...]) -> tuple[PackageFinder, PackageFinder, str] | None:
    """A finder that lists every distribution of a package (for any Python), one whose evaluator
    says which of those install on ``target`` on this platform, and the sources they ask (for
    messages, credentials left out). No finder when the configuration leaves nothing to ask."""
    # unearth and its HTTP client take ~0.4 s to import: only a build that has requirements pays it
    from unearth import Link, PackageFinder, TargetPython

    # a project is missing from all but one of several indexes as a rule: unearth warns for each
    logging.getLogger("unearth.collector").setLevel(logging.ERROR)
    indexes = package_indexes()
    if indexes.no_index:
        if not indexes.find_links:
            return None
        everything = PackageFinder(find_links=indexes.find_links, ignore_compatibility=True)
    else:
        # with no index named, unearth's default index (pip's and uv's default) is the first source
        everything = PackageFinder(
            index_urls=[indexes.index_url] if indexes.index_url else [], ignore_compatibility=True
        )
        for url in indexes.extra_index_urls:
            everything.add_index_url(url)
        for link in indexes.find_links:
            everything.add_find_links(link)
    session = everything.session  # one HTTP client, made before the threads that share it
    matcher = PackageFinder(session=session, target_python=TargetPython(py_ver=target))
    sources = ", ".join(Link(source["url"]).redacted for source in everything.sources)
    return everything, matcher, sources


def _releases(finder: PackageFinder, matcher: PackageFinder, name: str) -> list[_Release] | Exception:
    """Every version of ``name`` on the index, oldest first, or the error that stopped the query."""
    try:
        packages = list(finder.find_all_packages(name, allow_yanked=True))
    except Exception as exc:  # noqa: BLE001 - unearth lets its HTTP client's errors through (offline, TLS, timeout)
        return exc
    evaluator = matcher.build_evaluator(name, allow_yanked=True)
    by_version: dict[Version, _Release] = {}
    for package in packages:
        try:
            version = Version(package.version or "")
        except InvalidVersion:
            continue
        by_version.setdefault(version, _Release(version, evaluator)).links.append(package.link)
    return sorted(by_version.values(), key=lambda r: r.version)


def _fit_one(
    req: Requirement, releases: list[_Release], *, target: tuple[int, ...], sources: str, strict: bool
) -> tuple[Version | None, str]:
    """None when ``req`` installs on ``python`` as written, else the version that replaces it and the
    line that says so; raises when the package or the version does not exist, or under ``strict``."""
    if not releases:
        raise EmulatorError(
            f"'{req.name}' is not on the package index ({sources}): no distribution of it exists there. "
            "If it is a conda package (from a conda channel), amlemu installs with pip semantics only: remove "
            "it from the conda file or name its pip equivalent under pip:; otherwise check its spelling.",
            code="EnvironmentBuildFailed",
        )
    if not req.specifier:
        return None, ""
    satisfying = set(req.specifier.filter([r.version for r in releases]))
    if not satisfying:
        raise EmulatorError(
            f"'{req}' names no version of {req.name} that exists on the package index ({sources}). "
            f"Versions near it: {_nearby(req, releases)}. Pin one of those.",
            code="EnvironmentBuildFailed",
        )
    if any(r.fits for r in releases if r.version in satisfying):
        return None, ""
    reference = next(r for r in reversed(releases) if r.version in satisfying)
    python = _shown(target)
    reason, needs = _why_not(reference, target)
    candidates = [
        r
        for r in releases
        if r.fits and not r.yanked and (reference.version.is_prerelease or not r.version.is_prerelease)
    ]
    if not candidates:
        newest = _why_not(releases[-1], target)[0]
        raise EmulatorError(
            f"No version of '{req.name}' installs on Python {python} (the newest: {newest}). "
            "Ask for a Python it supports in the conda file (python=X.Y), with that Python on this machine.",
            code="EnvironmentBuildFailed",
        )
    later = [r.version for r in candidates if r.version > max(satisfying)]
    earlier = [r.version for r in candidates if r.version < min(satisfying)]
    chosen = min(later) if later else max(earlier) if earlier else candidates[-1].version
    if strict:
        raise EmulatorError(
            f"'{req}' cannot be installed on Python {python}: {reason}, so it needs {needs}. Pins are strict "
            f"(AMLEMU_PINS=strict or pins: strict in .amlemu.yml), so amlemu does not put in {chosen}, the "
            f"nearest version for Python {python}. Ask for a Python the pin supports in the conda file (with that "
            f"Python on this machine), pin {req.name}=={chosen}, or drop strict pins.",
            code="EnvironmentBuildFailed",
        )
    direction = "" if later else "; no later version runs on it"
    return (
        chosen,
        f"{req.name} {_requested(req)} → {chosen} ({reason}; this environment runs Python {python}{direction})",
    )


def _why_not(release: _Release, target: tuple[int, ...]) -> tuple[str, str]:
    """Why ``release`` does not install on Python ``target``, and the Python it needs, in words."""
    python, version = _shown(target), Version(".".join(map(str, target)))
    for link in release.links:
        try:
            spec = SpecifierSet(link.requires_python or "")
        except InvalidSpecifier:
            continue
        if link.requires_python and not spec.contains(version, prereleases=True):
            failing = ",".join(str(s) for s in spec if not s.contains(version, prereleases=True))
            return f"{release.version} requires Python {failing}", f"Python {link.requires_python.strip()}"
    wheel_pythons = sorted(
        {tag.interpreter for link in release.links if link.is_wheel for tag in _wheel_tags(link.filename)},
        key=lambda tag: (len(tag), tag),
    )
    if wheel_pythons:
        built = ", ".join(wheel_pythons)
        source = " (only its source, which needs compiling)" if release.sdist_fits else ""
        return (
            f"{release.version} has no wheel for Python {python} on {sysconfig.get_platform()}{source}; "
            f"its wheels are for {built}",
            f"a Python its wheels are built for ({built})",
        )
    return f"{release.version} has no distribution that installs on Python {python}", "another Python"


def _wheel_tags(filename: str) -> frozenset:
    try:
        return parse_wheel_filename(filename)[3]
    except (InvalidVersion, ValueError):
        return frozenset()


def _requested(req: Requirement) -> str:
    """``1.5.1`` for ``==1.5.1`` (``1.5.*`` for ``==1.5.*``), else the specifier as written."""
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "==="):
        return specs[0].version
    return str(req.specifier)


def _nearby(req: Requirement, releases: list[_Release]) -> str:
    """A few versions either side of the one ``req`` names (the newest ones when it names none)."""
    versions = [r.version for r in releases if not r.version.is_prerelease] or [r.version for r in releases]
    pinned = None
    for spec in req.specifier:
        try:
            pinned = Version(spec.version.removesuffix(".*"))
        except InvalidVersion:
            continue
    if pinned is None:
        shown = versions[-6:]
    else:
        below = [v for v in versions if v < pinned][-3:]
        above = [v for v in versions if v > pinned][:3]
        shown = below + above
    text = ", ".join(map(str, shown))
    return text if shown and shown[-1] == versions[-1] else f"{text} (newest: {versions[-1]})"


def _rewrite(req: Requirement, version: Version) -> str:
    """``req`` moved to ``version``, keeping its extras and marker: an exact pin (``==1.5.1``) becomes that
    version; a range (``~=1.22.0``, ``==1.22.*``, ``>=1,<1.23``) becomes ``version``'s release series from
    ``version`` on (``>=1.23.2,==1.23.*``), so the resolver can still take a later fix of it where another
    package needs one (ml-dtypes needs numpy>=1.23.3)."""
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    marker = f"; {req.marker}" if req.marker else ""
    specs = list(req.specifier)
    exact = len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version
    if exact or len(version.release) < 2:
        return f"{req.name}{extras}=={version}{marker}"
    series = ".".join(map(str, version.release[:2]))
    return f"{req.name}{extras}>={version},=={series}.*{marker}"
