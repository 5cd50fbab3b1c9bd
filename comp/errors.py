"""The one exception type the CLI turns into a single clear line and exit code 1."""


class CompError(Exception):
    """A problem with the user's input or workspace; the message says what and what to do."""
