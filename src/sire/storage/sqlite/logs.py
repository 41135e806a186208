"""Step logs in SQLite: `log` events appended under the driver's lease.

A job for the writer thread like those of jobs.py (`op(jobs, *args)` inside its
transaction). Its SQL is the named queries the step transitions use (`touch` to
fence, `add_event` to append): a log line is one more event of the execution.
"""

from __future__ import annotations

import time

from sire.storage.sqlite.jobs import Jobs
from sire.storage.sqlite.schema import Q

#: (at, level, data as JSON): one log line, encoded on the loop.
EncodedLog = tuple[float, str, str]


def add_logs(jobs: Jobs, execution_id: str, token: int, key: str, logs: list[EncodedLog]) -> None:
    """Append `logs` as `log` events of step `key`, if the lease's token is still current."""
    jobs._fenced(Q.touch, (time.time(), execution_id, token))
    jobs.conn.executemany(
        Q.add_event, [(execution_id, at, "log", key, level, data) for at, level, data in logs]
    )
