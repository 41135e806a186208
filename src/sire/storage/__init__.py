"""Storage: where executions and their step states live.

`Store` is the protocol the engine writes every transition through; `MemoryStore`
is the in-process implementation (and the fake for tests). Durable stores (SQLite,
PostgreSQL) implement the same protocol and pass the same contract suite.
"""
