"""comp: from raw challenge files to a leaderboard CSV."""

__version__ = "0.1.0"
