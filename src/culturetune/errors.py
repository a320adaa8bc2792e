"""The one exception type users see: a message that says what went wrong and what to do."""


class CultureTuneError(Exception):
    """A user-facing error. The CLI prints its message and exits with status 2, no traceback."""
