"""The scoring server's settings, read from the environment as Azure ML sets it.

The names are azureml-inference-server-http's (``AZUREML_MODEL_DIR``,
``AML_APP_ROOT``, ``AZUREML_ENTRY_SCRIPT``, ``SERVICE_NAME`` ...); the limits
amlemu adds carry its ``AMLEMU_`` prefix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import StartupError

# Azure ML documents no payload limit for managed online endpoints; 1.5 MiB keeps a
# replica's memory bounded and is far above any tabular batch of DEFAULT_MAX_ROWS rows.
DEFAULT_MAX_REQUEST_BYTES = 1536 * 1024
DEFAULT_MAX_ROWS = 10_000
#: the endpoint host gives each replica a secret in this variable; the gateway sends it in this header on
#: every request (probes included), and the server answers nothing to a request without it
REPLICA_SECRET_ENV = "AMLEMU_REPLICA_SECRET"
REPLICA_SECRET_HEADER = "x-amlemu-replica-secret"
#: a replica's answer to ``GET /`` with the secret may name, in this header, a Unix socket of its own
#: (``@<name>``, Linux's abstract namespace) on which the gateway can reach it more cheaply than over TCP
REPLICA_CHANNEL_HEADER = "x-amlemu-replica-channel"


@dataclass(frozen=True)
class ServerSettings:
    """What one replica serves and its limits.

    Attributes:
        model_dir: ``AZUREML_MODEL_DIR``, ``.../azureml-models/<name>/<version>``; None without a model.
        app_root: ``AML_APP_ROOT``, the code folder (cwd and ``sys.path`` entry of the script).
        entry_script: ``AZUREML_ENTRY_SCRIPT`` relative to ``app_root``; None selects the
            built-in ONNX scorer.
        max_request_bytes: ``AMLEMU_MAX_REQUEST_BYTES``, the largest body accepted (413 above).
        max_rows: ``AMLEMU_MAX_ROWS``, the most rows the built-in scorer takes in one request.
        service_name: ``SERVICE_NAME``, the title of the swagger document.
        service_version: ``SERVICE_VERSION``, the version of the swagger document.
        service_path_prefix: ``SERVICE_PATH_PREFIX``, prepended to the paths in the swagger document.
        server_version: ``HTTP_X_MS_SERVER_VERSION``, echoed as ``x-ms-server-version`` when set.
        log_level: ``AZUREML_LOG_LEVEL``.
        replica_secret: ``AMLEMU_REPLICA_SECRET``, what every request must carry in the
            ``x-amlemu-replica-secret`` header; None (a server started on its own, as in its unit
            tests) turns the check off. Kept out of ``repr`` so that it is never logged.
    """

    model_dir: str | None = None
    app_root: str = "."
    entry_script: str | None = None
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_rows: int = DEFAULT_MAX_ROWS
    service_name: str = "ML service"
    service_version: str = "1.0"
    service_path_prefix: str = ""
    server_version: str = ""
    log_level: str = "INFO"
    replica_secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerSettings:
        """Reads the settings; raises StartupError naming a malformed variable."""
        env = os.environ if environ is None else environ
        return cls(
            model_dir=env.get("AZUREML_MODEL_DIR") or None,
            app_root=env.get("AML_APP_ROOT") or os.getcwd(),
            entry_script=env.get("AZUREML_ENTRY_SCRIPT") or None,
            max_request_bytes=_positive_int(env, "AMLEMU_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES),
            max_rows=_positive_int(env, "AMLEMU_MAX_ROWS", DEFAULT_MAX_ROWS),
            service_name=env.get("SERVICE_NAME", "ML service"),
            service_version=env.get("SERVICE_VERSION", "1.0"),
            service_path_prefix=env.get("SERVICE_PATH_PREFIX", ""),
            server_version=env.get("HTTP_X_MS_SERVER_VERSION", ""),
            log_level=env.get("AZUREML_LOG_LEVEL", "INFO").upper(),
            replica_secret=env.get(REPLICA_SECRET_ENV) or None,
        )


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise StartupError(f"{name}={raw!r} is not a positive whole number: set it to e.g. {default} or unset it")
    return value


def describe_bytes(n: int) -> str:
    """``1572864`` -> ``'1.5 MiB (1572864 bytes)'``, for limit messages."""
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit} ({n} bytes)"
    return f"{n} bytes"
