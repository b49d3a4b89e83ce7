"""What keeps another web page from driving the studio: the Host check and the CSRF token.

The studio listens on 127.0.0.1, but a page on any site can still make the browser send requests
there. Two checks answer that:

- **Host.** Every request must name the studio's own address (``127.0.0.1:<port>`` or
  ``localhost:<port>``). A site that rebinds its DNS name to 127.0.0.1 sends its own name, and
  is refused, so it can never read a page (and the token in it).
- **CSRF token.** Every page carries the studio's token (one per studio process, from
  :mod:`secrets`); a POST must send it back (``X-CSRF-Token`` header, or a ``csrf_token`` form field)
  or it is refused with 403. Another site can make the browser POST, but cannot read the token.

Endpoint keys travel only in the answer of such a POST, never in a page's HTML.
"""

from __future__ import annotations

import hmac
import re
import secrets

from flask import Response, abort, current_app, request

HEADER = "X-CSRF-Token"
FIELD = "csrf_token"
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_PORT = re.compile(r":\d+$")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token() -> str:
    """The studio's CSRF token (what every page embeds)."""
    return current_app.config["STUDIO_CSRF_TOKEN"]


def check_request() -> Response | None:
    """``before_request``: refuse a foreign Host, and a POST without the page's token."""
    if _PORT.sub("", request.host or "").lower() not in _LOCAL_HOSTS:  # plain text: no page, so no token
        return Response(
            f"Host '{request.host}' is not this studio's address; open it at 127.0.0.1.\n", 403, mimetype="text/plain"
        )
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    sent = request.headers.get(HEADER) or request.form.get(FIELD) or ""
    if not hmac.compare_digest(sent.encode(), token().encode()):
        abort(403, description="This request did not carry the studio page's CSRF token; reload the page and retry.")
    return None
