"""comp's version (run records note it), in a module of its own so that any layer reads it."""

__version__ = "0.1.0"
