"""The engine: drives one Execution through its DAG.

Knows the `Store` and `Dispatcher` protocols and nothing concrete: steps start as
soon as their dependencies finish, bounded by `max_concurrency`; every transition
is persisted before anything depends on it; templates render in a sandbox.
"""
