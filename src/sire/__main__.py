"""`python -m sire`: the same as the `sire` command."""

from sire.cli.main import main

main()
