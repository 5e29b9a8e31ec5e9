"""Errors the service layer raises. Pages show ``UserError`` messages as they are; anything else is an apology."""


class UserError(Exception):
    """Something the user can fix; the message is safe and meant to be shown."""


class ValidationError(UserError):
    """Input was rejected; nothing was changed."""


class PermissionDenied(UserError):
    """The logged-in user (or visitor) may not do this."""


class NotFound(UserError):
    """The thing asked for does not exist."""


class AuthenticationFailed(UserError):
    """Login refused. Always the same message, whatever the cause, so accounts cannot be probed."""

    def __init__(self) -> None:
        super().__init__("Unknown username or wrong password.")


class InvalidToken(UserError):
    """An API request's bearer token is missing, malformed, expired or revoked, or its user is inactive."""

    def __init__(self) -> None:
        super().__init__("The API token is missing, malformed, expired or revoked.")


class DatabaseUnavailable(Exception):
    """The database cannot be reached; the UI shows what to check rather than a traceback."""


class QueryTooSlow(Exception):
    """A statement ran past its time limit (statement_timeout) and was cancelled; its transaction was rolled back.

    Not a ``DatabaseUnavailable``: the server is there, this one request asked too much of it. The UI shows
    ``MESSAGE``; ``statement`` (its start, no parameters) and ``timeout_ms`` are for the log.
    """

    MESSAGE = "This took too long; please try again or narrow your search."

    def __init__(self, statement: str = "", *, timeout_ms: int | None = None) -> None:
        super().__init__(f"statement cancelled after {timeout_ms} ms: {statement}" if timeout_ms else statement)
        self.statement = statement
        self.timeout_ms = timeout_ms
