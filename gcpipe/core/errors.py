"""The one error type a user sees: its message is a sentence that says what to do, never a traceback."""


class GcpipeError(Exception):
    """An error worded for the user; the CLI prints its message alone and exits with status 1."""
