"""The one exception type users see: a message that says what went wrong and what to do."""


class CultureTuneError(Exception):
    """A user-facing error. The CLI prints its message and exits with status 2, no traceback."""

    exit_code = 2


class Interrupted(CultureTuneError):
    """The user stopped the work (Ctrl-C); the message says how to continue. Exit status 130."""

    exit_code = 130
