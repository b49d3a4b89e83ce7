"""``az``'s global arguments: ``--query``, ``-o/--output``, verbosity and the delete prompt, as ``az`` has them.

``az`` (through its knack framework) evaluates ``--query`` with JMESPath on the command's
result, then hands the result to the chosen formatter; a ``None`` result prints nothing. The
formatters here follow knack's rules:

- ``json``: two-space indents, keys sorted, non-ASCII kept; ``jsonc`` and ``yamlc`` are coloured
  only when stdout and stderr are terminals (plain ``json``/``yaml`` otherwise).
- ``yaml``: ``yaml.safe_dump`` block style, keys sorted.
- ``tsv``: one line per item of a list (a scalar result is one line); a dict's values in key order
  (in the query's order for a ``--query`` projection), a nested dict as an empty field, a nested
  list as its length, ``None`` as ``None``; a bare boolean as ``true``/``false``.
- ``table``: tabulate's ``simple`` layout; columns from the keys (first letter capitalised), nested
  values, ``None`` and the keys ``id``, ``type`` and ``etag`` left out, keys sorted unless a
  ``--query`` shaped them; ``az ml``'s list commands have their own columns (``TABLE_COLUMNS``).
- ``none``: nothing.

JMESPath, PyYAML and Pygments are imported only by the flag that needs them, so a plain
``amlemu ... show`` pays for none of them at start-up.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

OUTPUT_FORMATS = ("json", "jsonc", "none", "table", "tsv", "yaml", "yamlc")
QUERY_HELP_URL = "https://learn.microsoft.com/cli/azure/query-azure-cli"
CONFIRM_PROMPT = "Are you sure you want to perform this operation?"
TABLE_UNAVAILABLE = (
    "Table output unavailable. Use the --query option to specify an appropriate query. Use --debug for more info."
)
#: The loggers whose warnings and errors the CLI shows by default (az's "CLI logger"); the rest of
#: the process's loggers (azure-core, urllib3, MLflow, ...) are shown with --debug only, as az does.
CLI_LOGGERS = ("amlemu", "emulator", "backends")

logger = logging.getLogger("amlemu.cli")


class OutputError(Exception):
    """The result cannot be shown as asked (a failing JMESPath function, a table with no columns)."""


# -- the arguments ----------------------------------------------------------------------------------------------------
def jmespath_type(raw_query: str):
    """``--query``'s type: the compiled expression (argparse names this function in its error, as az's message does)."""
    import jmespath  # only --query needs JMESPath (~15 ms at start)

    try:
        return jmespath.compile(raw_query)
    except KeyError as exc:  # JMESPath raises KeyError for some malformed input; argparse handles ValueError
        raise ValueError(raw_query) from exc


def add_global_arguments(p: argparse.ArgumentParser) -> None:
    """az's global arguments, on every verb (argparse accepts them before or after the verb's own)."""
    group = p.add_argument_group("Global Arguments")
    group.add_argument("--debug", action="store_true", help="Increase logging verbosity to show all debug logs.")
    group.add_argument("--only-show-errors", action="store_true", help="Only show errors, suppressing warnings.")
    group.add_argument(
        "-o", "--output", choices=OUTPUT_FORMATS, default="json", type=str.lower, help="Output format. Default: json."
    )
    group.add_argument(
        "--query",
        metavar="JMESPATH",
        type=jmespath_type,
        help="JMESPath query string. See http://jmespath.org/ for more information and examples.",
    )
    group.add_argument(
        "--subscription", help="Subscription ID (azure backend); locally, checked against the local subscription."
    )
    group.add_argument(
        "--verbose", action="store_true", help="Increase logging verbosity. Use --debug for full debug logs."
    )


# -- logging: az's console levels -------------------------------------------------------------------------------------
class _ConsoleHandler(logging.Handler):
    """``LEVEL: message`` on the ``sys.stderr`` of the moment (a test's capture, or the terminal)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def configure_logging(*, debug: bool, verbose: bool, only_show_errors: bool) -> None:
    """Levels as az sets them: warnings by default, errors only, info (--verbose) or everything (--debug).

    Raises:
        OutputError: ``--only-show-errors`` together with ``--debug`` or ``--verbose``.
    """
    if only_show_errors and (debug or verbose):
        raise OutputError("--only-show-errors can't be used together with --debug or --verbose")
    level = (
        logging.ERROR if only_show_errors else logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    )
    fmt = logging.Formatter("%(levelname)s: %(name)s: %(message)s" if debug else "%(levelname)s: %(message)s")
    root = logging.getLogger()
    for target, target_level in [*((logging.getLogger(n), level) for n in CLI_LOGGERS), (root, None)]:
        handler = next((h for h in target.handlers if isinstance(h, _ConsoleHandler)), None)
        if handler is None:
            handler = _ConsoleHandler()
            target.addHandler(handler)
        handler.setFormatter(fmt)
        if (
            target is root
        ):  # other libraries' records: only with --debug (a handler here also mutes logging's last resort)
            handler.setLevel(logging.DEBUG if debug else logging.CRITICAL)
            if debug:
                root.setLevel(logging.DEBUG)
        else:
            target.setLevel(target_level)
            handler.setLevel(target_level)
            target.propagate = False


# -- the delete prompt ------------------------------------------------------------------------------------------------
def user_confirmed(message: str = CONFIRM_PROMPT) -> bool:
    """az's ``(y/n)`` prompt on a terminal; without one, az's warning and no."""
    if not sys.stdin.isatty():
        logger.warning("Unable to prompt for confirmation as no tty available. Use --yes.")
        return False
    while True:
        try:
            answer = input(f"{message} (y/n): ").strip().lower()
        except EOFError:
            return False
        if answer in ("y", "n"):
            return answer == "y"


# -- --query and the formats ------------------------------------------------------------------------------------------
def apply_query(result: Any, query) -> Any:
    """``query`` (a compiled JMESPath) on ``result``; projections keep the query's key order, as in az."""
    import jmespath  # already imported by --query's parsing

    try:
        return query.search(result, jmespath.Options(dict_cls=OrderedDict))
    except jmespath.exceptions.JMESPathError as exc:
        raise OutputError(
            f"Invalid jmespath query supplied for `--query`: {exc}\n"
            f"To learn more about --query, please visit: '{QUERY_HELP_URL}'"
        ) from exc


def render(result: Any, fmt: str, *, query_active: bool = False, table: Callable | None = None) -> str:
    """``result`` as ``-o fmt`` prints it (``""`` for ``none``); ``table`` is the verb's own table columns."""
    if fmt == "none":
        return ""
    if fmt in ("json", "jsonc"):
        text = json.dumps(result, ensure_ascii=False, indent=2, sort_keys=True, separators=(",", ": "), default=str)
        return _colour(text + "\n", "JsonLexer") if fmt == "jsonc" else text + "\n"
    if fmt in ("yaml", "yamlc"):
        import yaml  # only -o yaml needs PyYAML (~20 ms at start)

        # through JSON, as az falls back to for a query's OrderedDicts: plain types, keys sorted
        text = yaml.safe_dump(json.loads(json.dumps(result, default=str)), default_flow_style=False)
        return _colour(text, "YamlLexer") if fmt == "yamlc" else text
    if fmt == "tsv":
        return "".join(_tsv_row(item) for item in (result if isinstance(result, list) else [result]))
    if fmt == "table":
        if table is not None and not query_active and isinstance(result, list):
            result = table(result)
        rows = result if isinstance(result, list) else [result]
        return _table(rows, sort_keys=not query_active and table is None)
    raise ValueError(fmt)


def use_colour() -> bool:
    """Colour only when both stdout and stderr are terminals, as az decides."""
    return sys.stdout.isatty() and sys.stderr.isatty()


def _colour(text: str, lexer: str) -> str:
    if not use_colour():
        return text
    try:
        from pygments import formatters, highlight, lexers  # only -o jsonc/yamlc on a terminal (~40 ms)
    except ImportError:  # colour is cosmetic: without Pygments, the plain document
        return text
    return highlight(text, getattr(lexers, lexer)(), formatters.TerminalFormatter())


# -- tsv: knack's rules -----------------------------------------------------------------------------------------------
def _tsv_field(value: Any) -> str:
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, dict):
        return ""  # a field all the same, so rows keep their columns
    return value if isinstance(value, str) else str(value)


def _tsv_row(item: Any) -> str:
    if isinstance(item, OrderedDict):  # a --query projection: its own order
        values = list(item.values())
    elif isinstance(item, dict):
        values = [value for _, value in sorted(item.items())]
    elif isinstance(item, list):
        values = item
    elif isinstance(item, bool):
        return str(item).lower() + "\n"
    else:
        return _tsv_field(item) + "\n"
    return "\t".join(_tsv_field(v) for v in values) + "\n"


# -- table: knack's columns in tabulate's "simple" layout -------------------------------------------------------------
_TABLE_SKIP_KEYS = ("id", "type", "etag")


def _table_row(item: Any, sort_keys: bool) -> OrderedDict:
    row: OrderedDict = OrderedDict()
    if isinstance(item, dict):
        for key in sorted(item) if sort_keys else item:
            value = item[key]
            if key not in _TABLE_SKIP_KEYS and value is not None and not isinstance(value, (list, dict, set)):
                row[key[:1].upper() + key[1:]] = value
    elif isinstance(item, list):
        for i, value in enumerate(item):
            row[f"Column{i + 1}"] = value
    else:
        row["Result"] = item
    return row


def _table(items: list, *, sort_keys: bool) -> str:
    rows = [_table_row(item, sort_keys) for item in items]
    if not rows:
        return "\n"
    headers: list[str] = []
    for row in rows:
        headers.extend(key for key in row if key not in headers)
    if not headers:
        raise OutputError(TABLE_UNAVAILABLE)
    cells = [[[] if row.get(h) is None else str(row[h]).split("\n") for h in headers] for row in rows]
    # tabulate pads each column to its widest line, and at least two past its header
    widths = [max([len(h) + 2, *(len(line) for row in cells for line in row[i])]) for i, h in enumerate(headers)]

    def line(parts: list[str]) -> str:
        return "  ".join(part.ljust(width) for part, width in zip(parts, widths, strict=True)).rstrip()

    out = [line(headers), line(["-" * width for width in widths])]
    for row in cells:
        for n in range(max(1, *(len(cell) for cell in row))):
            out.append(line([cell[n] if n < len(cell) else "" for cell in row]))
    return "\n".join(out) + "\n"


# -- az ml's own table columns for its list commands (azext_mlv2 _format: table_transformer) -------------------------
def _columns(*spec: tuple[str, Callable[[dict], Any]]) -> Callable[[Any], list]:
    def transform(result: Any) -> list:
        return [OrderedDict((header, get(r)) for header, get in spec) for r in result]

    return transform


def _versioned(*extra: tuple[str, str]) -> Callable[[Any], list]:
    """name and latest version, then ``extra`` columns when the entries are versions (``--name`` given)."""

    def transform(result: Any) -> list:
        rows = []
        for r in result:
            row = OrderedDict([("name", r.get("name")), ("latest version", r.get("latest_version"))])
            if r.get("version"):
                row.update((header, r.get(key)) for header, key in extra)
            rows.append(row)
        return rows

    return transform


def _usage_name(r: dict) -> Any:
    name = r.get("name")
    return name["value"] if isinstance(name, dict) and "value" in name else None


TABLE_COLUMNS: dict[str, Callable[[Any], list]] = {
    "job_list": _columns(
        ("name", lambda r: r.get("name")),
        ("status", lambda r: r.get("status")),
        ("experiment", lambda r: r.get("experiment_name")),
        ("compute target", lambda r: r.get("compute", "")),
        ("job type", lambda r: r.get("type")),
        ("created on", lambda r: (r.get("creation_context") or {}).get("created_at")),
    ),
    "model_list": list,  # az ml's model table keeps each entry as it is, in its own key order
    "environment_list": _versioned(("version", "version")),
    "data_list": _versioned(("version", "version"), ("data type", "version"), ("path", "path")),
    "datastore_list": _columns(
        ("name", lambda r: r.get("name")),
        ("storage type", lambda r: r.get("type")),
        ("storage account name", lambda r: r.get("account_name")),
    ),
    "compute_list": _columns(
        ("name", lambda r: r.get("name")),
        ("compute type", lambda r: r.get("type")),
        ("state", lambda r: r.get("state") or r.get("provisioning_state")),
        ("Instance type", lambda r: r.get("size")),
    ),
    "compute_list_sizes": _columns(
        *(
            (key, lambda r, key=key: r.get(key))
            for key in (
                "name",
                "family",
                "v_cp_us",
                "gpus",
                "os_vhd_size_mb",
                "max_resource_volume_mb",
                "memory_gb",
                "low_priority_capable",
                "premium_io",
                "supported_compute_types",
            )
        )
    ),
    "compute_list_usage": _columns(
        *((key, lambda r, key=key: r.get(key)) for key in ("aml_workspace_location", "type", "unit", "current_value")),
        ("limit", lambda r: r.get("limit")),
        ("name", _usage_name),
    ),
}
