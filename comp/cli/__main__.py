"""`python -m comp.cli`: the `comp` command."""

from comp.cli import main

main()
