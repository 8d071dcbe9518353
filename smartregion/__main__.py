"""`python -m smartregion` runs the CLI."""

from smartregion.cli.main import main

main()
