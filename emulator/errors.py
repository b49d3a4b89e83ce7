"""One root exception for the engine, with Azure-style error codes.

Every error names what was wrong and what to do about it; the CLI prints the
message and exits non-zero, the Python front door raises it as is.
"""


class EmulatorError(Exception):
    """Root of every error amlemu raises on purpose.

    Attributes:
        code: the Azure ML error code (``UserError``, ``ResourceNotFound`` ...).
        status: the HTTP status the REST API would answer with.
    """

    code = "UserError"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        Exception.__init__(self, message)  # not super(): front doors mix in the SDK's exception types
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status


class ValidationError(EmulatorError):
    """The request or spec is malformed; nothing was recorded."""


class ResourceNotFound(EmulatorError):
    code = "ResourceNotFound"
    status = 404


class ResourceExists(EmulatorError):
    code = "ResourceExists"
    status = 409


class NotEmulated(EmulatorError):
    """The operation exists in Azure ML but the local emulator does not support it (yet)."""

    code = "NotEmulated"
    status = 501

    def __init__(self, operation: str, hint: str = ""):
        msg = f"'{operation}' is not emulated yet by amlemu. " + (
            hint or "Run it against Azure ML with AMLEMU_BACKEND=azure."
        )
        super().__init__(msg)


class JobFailed(EmulatorError):
    """A streamed job ended Failed or Canceled."""

    code = "JobFailed"
    status = 200
