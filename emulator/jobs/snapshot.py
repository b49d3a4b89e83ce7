"""A job's code snapshot: the ``code:`` folder copied at submission, bounded, as Azure ML does.

Azure ML snapshots a job's code folder when the job is submitted, leaves out what
``.amlignore`` (or, without one, ``.gitignore``) names, and refuses a snapshot over its limit
(300 MB and 2,000 files in the v1 SDK). amlemu does the same:

- the limits are ``AMLEMU_SNAPSHOT_MAX_MB`` (default 300) and ``AMLEMU_SNAPSHOT_MAX_FILES``
  (default 2000), also settable in the config file (``snapshot_max_mb``, ``snapshot_max_files``);
  the folder is measured before anything is copied, and the walk stops at the first excess;
- ``code:`` at the filesystem root, the user's home folder, or under ``/proc``, ``/sys`` or
  ``/dev`` is refused;
- only regular files and folders are copied: a symlink is followed, as azure-ai-ml's upload
  does (the snapshot holds what it points to, under the link's name; a link into amlemu's own
  state folder, a folder already copied, or a target that no longer exists is left out);
  sockets, FIFOs and devices are skipped, and so are amlemu's own state folder and the usual
  caches (``.git``, ``__pycache__``, ``.venv``, ``mlruns`` ...);
- ignore files use the gitignore syntax, matched by ``pathspec`` (a maintained implementation of
  git's rules); one in a subfolder applies below it, and deeper files speak last, as in git.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from emulator import config
from emulator.errors import ValidationError

ALWAYS_SKIPPED = {".git", "__pycache__", ".venv", ".ipynb_checkpoints", "mlruns", ".amlemu"}
SPECIAL_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))
DEFAULT_MAX_MB, DEFAULT_MAX_FILES = 300, 2000


def limits() -> tuple[int, int]:
    """(bytes, files) a snapshot may hold, from the settings."""
    values = []
    for key, default in (("snapshot_max_mb", DEFAULT_MAX_MB), ("snapshot_max_files", DEFAULT_MAX_FILES)):
        raw = config.setting(key, str(default))
        try:
            value = int(str(raw))
            if value <= 0:
                raise ValueError
        except ValueError:
            raise ValidationError(f"AMLEMU_{key.upper()} must be a positive whole number; got {raw!r}.") from None
        values.append(value)
    return values[0] * 1024 * 1024, values[1]


class _Ignore:
    """The patterns of one ignore file (gitignore syntax, matched by ``pathspec``), relative to its folder."""

    def __init__(self, base: str, lines: list[str]):
        import pathspec  # on first use: only a code folder with an ignore file needs it (~30 ms at start)

        self.base = base  # folder of the ignore file, relative to the code root ("" for the root)
        self.spec = pathspec.GitIgnoreSpec.from_lines(lines)

    def verdict(self, rel: str, is_dir: bool) -> bool | None:
        """True: ignored, False: re-included, None: no rule of this file speaks of ``rel``."""
        if self.base:
            if not rel.startswith(self.base + "/"):
                return None
            rel = rel[len(self.base) + 1 :]
        return self.spec.check_file(f"{rel}/" if is_dir else rel).include


def _read_ignore(folder: Path, rel: str) -> _Ignore | None:
    for name in (".amlignore", ".gitignore"):  # Azure ML: .amlignore wins over .gitignore
        path = folder / name
        if path.is_file() and not path.is_symlink():
            try:
                return _Ignore(rel, path.read_text(errors="replace").splitlines())
            except OSError:
                return None
    return None


def _refuse_root(code: Path) -> None:
    real = code.resolve()
    if real == Path(real.anchor):
        raise ValidationError(
            f"code: '{code}' is the filesystem root; a job's code snapshot copies the whole "
            "folder. Point code: at your project's source folder."
        )
    if real == Path.home().resolve():
        raise ValidationError(
            f"code: '{code}' is your home folder; a job's code snapshot copies the whole "
            "folder. Point code: at your project's source folder."
        )
    for special in SPECIAL_ROOTS:
        if real == special or real.is_relative_to(special):
            raise ValidationError(
                f"code: '{code}' is under {special}, a special filesystem that cannot be "
                "snapshotted. Point code: at your project's source folder."
            )


def _too_big(code: Path, files: int, size: int, max_bytes: int, max_files: int) -> ValidationError:
    return ValidationError(
        f"The code folder {code} holds more than amlemu's snapshot limit of {max_files:,} files and "
        f"{max_bytes // (1024 * 1024):,} MB (counted so far: {files:,} files, {size / (1024 * 1024):,.1f} MB); "
        "Azure ML caps code snapshots the same way. Leave files out with an .amlignore file in the code "
        "folder (gitignore syntax, e.g. 'data/' or '*.ckpt'), point code: at a smaller folder, or raise the "
        "limit with AMLEMU_SNAPSHOT_MAX_MB / AMLEMU_SNAPSHOT_MAX_FILES."
    )


def plan(code: Path) -> list[tuple[str, str]]:
    """What a snapshot of folder ``code`` copies: ``(relative path, kind)`` with kind ``dir`` or
    ``file`` (links counted as what they point to), parents first. Raises ValidationError past the limits."""
    _refuse_root(code)
    max_bytes, max_files = limits()
    home = config.home().resolve()
    skip_real = {home, *SPECIAL_ROOTS}
    entries: list[tuple[str, str]] = []
    files = size = 0
    seen = {code.resolve()}  # folders already walked: a link back to one would loop
    stack: list[tuple[Path, str, list[_Ignore]]] = [(code, "", [])]
    while stack:
        folder, rel, ignores = stack.pop()
        own = _read_ignore(folder, rel)
        ignores = [*ignores, own] if own else ignores
        try:
            children = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise ValidationError(f"Cannot read {folder} for the code snapshot: {exc.strerror}.") from None
        subfolders = []
        for entry in children:
            if entry.name in ALWAYS_SKIPPED:
                continue
            child_rel = f"{rel}/{entry.name}" if rel else entry.name
            try:
                info = entry.stat(follow_symlinks=True)  # a link counts as what it points to
            except OSError:  # a dangling link, or one that loops
                continue
            kind = "dir" if stat.S_ISDIR(info.st_mode) else "file" if stat.S_ISREG(info.st_mode) else None
            if kind is None:  # socket, FIFO, device: not code
                continue
            if entry.is_symlink():
                real = Path(entry.path).resolve()
                if real == home or home in real.parents:
                    continue
            verdict = None
            for ignore in ignores:  # deeper ignore files speak last, as in git
                said = ignore.verdict(child_rel, kind == "dir")
                verdict = verdict if said is None else said
            if verdict:
                continue
            if kind == "dir":
                real = Path(entry.path).resolve()
                if real in skip_real or real in seen:
                    continue
                seen.add(real)
                subfolders.append((Path(entry.path), child_rel, ignores))
            else:
                files += 1
                size += info.st_size
                if files > max_files or size > max_bytes:
                    raise _too_big(code, files, size, max_bytes, max_files)
            entries.append((child_rel, kind))
        stack.extend(reversed(subfolders))
    return entries


def copy(code: Path, snapshot: Path) -> None:
    """Snapshot ``code`` (a folder or a file) into the new folder ``snapshot``."""
    code = Path(code)
    if code.is_dir():
        entries = plan(code)
        snapshot.mkdir()
        for rel, kind in entries:
            src, dst = code / rel, snapshot / rel
            if kind == "dir":
                dst.mkdir()
            else:
                shutil.copy2(src, dst)  # follows a link: the snapshot holds its target's bytes
        return
    snapshot.mkdir()
    if code.exists():
        info = code.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ValidationError(f"code: '{code}' is neither a folder nor a regular file.")
        max_bytes, _ = limits()
        if info.st_size > max_bytes:
            raise _too_big(code, 1, info.st_size, max_bytes, 1)
        shutil.copy2(code, snapshot)
