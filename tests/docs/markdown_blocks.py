"""The fenced code blocks of a guide page, and what the runner does with each.

A block's info string says what it is (the first word is the language, as GitHub reads it):

- ```` ```bash ```` and ```` ```python ````: run, in page order;
- ```` ```yaml file=cluster.yml ```` (any language): written to that file, relative to the page's folder;
- ```` ```output ````: what the runnable block just above prints; each of its non-blank lines must appear
  in that output, in order, where ``...`` in a line stands for any text;
- ```` ```bash skip ```` / ```` ```python no-run ````: shown, not run; the line just above the fence must be
  ``<!-- not run: <the reason> -->``.

Any other block fails the page: every block in the guide is run, written, compared or explained.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

RUNNABLE = ("bash", "python")
SKIP_WORDS = ("skip", "no-run")
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_REASON = re.compile(r"^\s*<!--\s*not run:\s*(?P<reason>.*?)\s*-->\s*$")


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced block: its language, flags from the info string, text and where it starts (1-based line)."""

    page: Path
    line: int
    language: str
    words: tuple[str, ...]
    text: str
    reason: str = ""  # for a block that is not run: the comment above its fence

    @property
    def where(self) -> str:
        return f"{self.page.name}:{self.line}"

    @property
    def skipped(self) -> bool:
        return any(word in SKIP_WORDS for word in self.words)

    @property
    def file(self) -> str | None:
        for word in self.words:
            if word.startswith("file="):
                return word.removeprefix("file=")
        return None

    @property
    def kind(self) -> str:
        """``skip``, ``file``, ``output``, ``bash``, ``python``, or ``unknown`` (which fails the page)."""
        if self.skipped:
            return "skip"
        if self.file:
            return "file"
        if self.language == "output" or self.language in RUNNABLE:
            return self.language
        return "unknown"


def parse(page: Path) -> list[Block]:
    """The fenced blocks of ``page``, in order (a fence is closed by one of the same character, at least as long)."""
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        words = tuple(opening["info"].split())
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = _FENCE.match(lines[j])
            if closing and closing["fence"][0] == fence[0] and len(closing["fence"]) >= len(fence):
                if not closing["info"].strip():
                    break
            body.append(lines[j][indent:] if lines[j][:indent].isspace() else lines[j])
            j += 1
        else:
            raise ValueError(f"{page.name}:{i + 1}: a code block is never closed")
        above = _REASON.match(lines[i - 1]) if i else None
        blocks.append(
            Block(
                page=page,
                line=i + 1,
                language=words[0] if words else "",
                words=words[1:],
                text="\n".join(body) + "\n",
                reason=above["reason"] if above else "",
            )
        )
        i = j + 1
    return blocks


def _line_pattern(expected: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in expected.split("...")))


def missing_output(expected: str, actual: str) -> str | None:
    """None when every non-blank line of ``expected`` matches a line of ``actual``, in order (``...``: any
    text; leading and trailing spaces ignored); else the first expected line not found."""
    remaining = [line.strip() for line in actual.splitlines()]
    for wanted in (line.strip() for line in expected.splitlines()):
        if not wanted:
            continue
        pattern = _line_pattern(wanted)
        for index, line in enumerate(remaining):
            if pattern.fullmatch(line):
                remaining = remaining[index + 1 :]
                break
        else:
            return wanted
    return None
