"""The two ways serving fails: a bad request, and a replica that cannot start."""


class ScoringError(Exception):
    """A request the server answers with an error status; nothing was scored.

    Attributes:
        status: the HTTP status of the answer.
        code: a short error code (``InvalidJson``, ``MissingInputData`` ...).
        message: what was wrong and what to send instead.
        run_function_failed: whether the answer carries ``x-ms-run-function-failed: True``.
    """

    def __init__(self, status: int, code: str, message: str, *, run_function_failed: bool = False):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.run_function_failed = run_function_failed


class BadRequest(ScoringError):
    """The request body does not fit the model (400)."""

    def __init__(self, code: str, message: str):
        super().__init__(400, code, message)


class StartupError(Exception):
    """The replica cannot serve: no usable model or scoring script. The server exits 3."""
