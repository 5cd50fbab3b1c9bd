"""The one exception type the CLI turns into a single clear line and exit code 1, and the
one-line notes comp prints about what it did on its own."""


class CompError(Exception):
    """A problem with the user's input or workspace; the message says what and what to do."""


class TimeLimitReached(CompError):
    """A run stopped at an epoch's end because its time limit passed; it is resumable."""


def note(text: str) -> None:
    """One line on stderr about something comp did on its own (a damaged cache rebuilt)."""
    import sys

    print(f"note: {text}", file=sys.stderr, flush=True)
