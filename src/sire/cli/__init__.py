"""The command line (Typer): wires stores, dispatchers and the engine; maps errors to exits.

`sire.cli.main:main` is the `sire` console script. Heavy parts (pydantic, PyYAML,
Jinja2, Rich) load only when a command needs them.
"""
