"""`python -m cdp_metrics` runs the command line."""

from .cli import main

main()
