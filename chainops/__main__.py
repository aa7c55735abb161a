"""`python -m chainops` runs the command line."""

from chainops.cli import run

run()
