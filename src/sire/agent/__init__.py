"""The agent: claims due executions from the store and drives them, many at once.

Due means `pending`, or `running`/`retrying` with an expired or released lease and
its next attempt passed. SIGTERM (or the stop event) interrupts the executions it
drives, which release their leases and stay resumable by any other agent.
"""
