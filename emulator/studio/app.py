"""The studio's Flask app: one blueprint per area, the security checks, errors as pages (or JSON for scripts).

The app holds the workspace's store (``app.config["STUDIO_STORE"]``) and nothing else: every page reads the
store when it is asked for, so what the CLI, ``connect()`` or ``amlemu serve`` changed shows at once.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from pathlib import Path

from flask import Flask, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from emulator import errors
from emulator.store import WorkspaceStore
from emulator.studio import reads, security

log = logging.getLogger("amlemu.studio")
HERE = Path(__file__).resolve().parent
#: the studio's areas, each a module with a ``blueprint``, in the order of the navigation bar
AREAS = ("jobs", "assets", "endpoints", "compute")
NAVIGATION = (
    ("jobs.job_list", "Jobs"),
    ("assets.model_list", "Models"),
    ("assets.environment_list", "Environments"),
    ("endpoints.endpoint_list", "Endpoints"),
    ("compute.compute_list", "Compute"),
)


def create_app(store: WorkspaceStore) -> Flask:
    app = Flask(
        "amlemu.studio",
        root_path=str(HERE),
        template_folder=str(HERE / "templates"),
        static_folder=str(HERE / "static"),
    )
    app.config.update(STUDIO_STORE=store, STUDIO_CSRF_TOKEN=security.new_token())
    for area in AREAS:
        app.register_blueprint(importlib.import_module(f"emulator.studio.{area}").blueprint)
    app.before_request(security.check_request)
    app.after_request(_headers)
    app.register_error_handler(errors.EmulatorError, _engine_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    app.jinja_env.filters.update(when=when, seconds=seconds, size=size, number=number, pretty=reads.pretty)
    app.jinja_env.globals.update(navigation=NAVIGATION, workspace=store.name, csrf_token=security.token)
    app.context_processor(lambda: {"current_nav": _current_nav()})
    app.add_url_rule("/", "home", lambda: app.view_functions["jobs.job_list"]())
    return app


def _current_nav() -> str | None:
    """The navigation entry of the page shown (Models and Environments share the ``assets`` blueprint)."""
    endpoint = request.endpoint or "jobs.job_list"
    for target, _ in NAVIGATION:
        area, _, view = target.partition(".")
        if endpoint.startswith(f"{area}.{view.split('_')[0]}" if area == "assets" else f"{area}."):
            return target
    return "jobs.job_list" if endpoint == "home" else None


def store() -> WorkspaceStore:
    """The workspace the studio shows."""
    return current_app.config["STUDIO_STORE"]


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.method == "POST"


# -- formatting -------------------------------------------------------------------------------------------------------
def when(ts: float | None) -> str:
    """A timestamp as the studio shows it: local time, to the second."""
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def seconds(value: float | None) -> str:
    """A duration as Azure's Jobs list shows it: ``850 ms``, ``12.3 s``, ``4m 05s``, ``2h 03m``."""
    if value is None:
        return ""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    return f"{minutes // 60}h {minutes % 60:02d}m"


def number(value: float | None) -> str:
    """A metric value to 6 significant digits (the chart and the title attribute keep the whole)."""
    return "" if value is None else f"{value:.6g}"


def size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


# -- answers ----------------------------------------------------------------------------------------------------------
def _headers(response):
    """No framing by other sites, no guessing of types, nothing cached (pages show live state)."""
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _error(status: int, code: str, message: str):
    if wants_json():
        return jsonify({"error": {"code": code, "message": message}}), status
    return render_template("error.html", status=status, code=code, message=message), status


def _engine_error(exc: errors.EmulatorError):
    return _error(exc.status if exc.status >= 400 else 400, exc.code, exc.message)


def _http_error(exc: HTTPException):
    return _error(exc.code or 500, type(exc).__name__, exc.description or exc.name)


def _unexpected(exc: Exception):
    log.exception("%s %s failed", request.method, request.path)
    return _error(500, "InternalServerError", f"The studio failed on this request: {type(exc).__name__}: {exc}")
