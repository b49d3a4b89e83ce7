"""gunicorn configuration for a replica that runs the environment's own azureml-inference-server-http.

When a deployment's environment holds ``azureml-inference-server-http`` (directly or through
``azureml-defaults``), its replicas run that server, at the user's version, as Azure does:
``azmlinfsrv --entry_script <script> --port <port>``. The server runs gunicorn, and the
endpoint host hands gunicorn this module with gunicorn's own mechanism for adding settings to a
command line it does not write: ``GUNICORN_CMD_ARGS="--config python:emulator.serving.user_server"``.
azmlinfsrv itself is untouched; two server hooks keep amlemu's rules for replicas:

* ``on_starting`` (gunicorn's master, before it binds): azmlinfsrv always binds ``0.0.0.0``; with
  ``AMLEMU_REPLICA_HOST`` set (``127.0.0.1`` for a local process) the replica listens on that host
  instead, at the port azmlinfsrv was given.
* ``post_worker_init`` (each worker, after it loaded the app and ran the script's ``init()``): the
  worker's WSGI app is wrapped in :class:`.gate.GatewayOnly`, so a request without the replica
  secret gets 403, as from amlemu's own server.

The secret is taken out of the environment when gunicorn loads this module, in its master process,
so the scoring script never sees it; the forked workers keep it in memory. A replica started
without one refuses to start rather than serve unchecked.

It also turns off gunicorn's control socket (``control_socket_disable``).

This runs in the user's interpreter: standard library only, Python 3.8 syntax. Its module-level
names other than gunicorn's settings and hooks start with ``_`` or are upper case: gunicorn reads
every name of a configuration module that matches one of its settings as that setting.
"""

from __future__ import annotations

import os

from .gate import GatewayOnly
from .settings import REPLICA_SECRET_ENV

#: what the endpoint host puts in GUNICORN_CMD_ARGS
GUNICORN_ARGS = "--config python:emulator.serving.user_server"
#: the host a local replica listens on (azmlinfsrv's own is 0.0.0.0)
HOST_ENV = "AMLEMU_REPLICA_HOST"

#: taken out of the environment as soon as gunicorn loads this module, in its master process (before a
#: WORKER_PRELOAD=true master runs the scoring script's init()); an endpoint host has none to take
_secret = os.environ.pop(REPLICA_SECRET_ENV, "")


#: a setting of recent gunicorn (older ones ignore the name): no control socket, which would sit at one path per
#: user ($HOME/.gunicorn/gunicorn.ctl) for every replica, and is a way to manage the server besides the gateway
control_socket_disable = True


def on_starting(server) -> None:
    """In gunicorn's master, before it binds and forks: refuse to start without the replica secret, and
    listen on ``AMLEMU_REPLICA_HOST`` (when set) at each port azmlinfsrv asked gunicorn to bind."""
    if not _secret:
        raise RuntimeError(
            f"{REPLICA_SECRET_ENV} is not set: a replica behind amlemu's gateway needs the endpoint host's "
            "replica secret (this configuration is for the replicas an endpoint host starts)."
        )
    host = os.environ.pop(HOST_ENV, "")
    if host:
        binds = []
        for address in server.cfg.bind:
            if address.startswith(("unix:", "fd://")):
                binds.append(address)
            else:
                binds.append(f"{host}:{address.rpartition(':')[2]}")
        server.cfg.set("bind", binds)


def post_worker_init(worker) -> None:
    """Only the gateway reaches the worker's app."""
    worker.wsgi = GatewayOnly(worker.wsgi, _secret)
