"""The data every part shares: workflows (YAML <-> typed, validated), executions, step states.

Imports no other part of sire. `format` (pydantic) and `loader` (PyYAML) load lazily:
running a cached workflow needs neither.
"""
