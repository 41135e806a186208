"""An MCP server (stdio, 2025-11-25) whose `job` tool runs as a task that outlives it.

    TASK_STATE=/path/state.json python task_server.py

Tasks live in the JSON file $TASK_STATE, not in the process, like a job queue behind a
real server: a task started before a client crashed (and took this process with it) is
still there for the next process to report on. `job(seconds, label)` finishes `seconds`
after it was created. The file also counts `tools/call`s and records cancellations, so
tests can tell a resumed poll from a second call.

Plain JSON-RPC over stdin/stdout: the SDK's server has no Tasks support yet.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

STATE = Path(os.environ["TASK_STATE"])
JOB = {
    "name": "job",
    "description": "A long job, run as a task.",
    "inputSchema": {
        "type": "object",
        "properties": {"seconds": {"type": "number"}, "label": {"type": "string"}},
        "required": ["seconds", "label"],
    },
    "execution": {"taskSupport": "required"},
}


def load() -> dict[str, Any]:
    if STATE.exists():
        state: dict[str, Any] = json.loads(STATE.read_text())
        return state
    return {"calls": 0, "tasks": {}}


def save(state: dict[str, Any]) -> None:
    tmp = STATE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(STATE)


def task_view(task_id: str, task: dict[str, Any]) -> dict[str, Any]:
    status = task["status"]
    if status == "working" and time.time() >= task["due"]:
        status = "completed"
    return {
        "taskId": task_id,
        "status": status,
        "statusMessage": f"{task['label']}: {status}",
        "createdAt": "2026-11-25T00:00:00Z",
        "lastUpdatedAt": "2026-11-25T00:00:00Z",
        "ttl": 600000,
        "pollInterval": 100,
    }


def handle(method: str, params: dict[str, Any]) -> Any:
    if method == "initialize":
        return {
            "protocolVersion": "2025-11-25",
            "capabilities": {
                "tools": {},
                "tasks": {"cancel": {}, "requests": {"tools": {"call": {}}}},
            },
            "serverInfo": {"name": "task-server", "version": "1"},
        }
    if method == "ping":
        return {}
    if method == "tools/list":
        return {"tools": [JOB]}
    state = load()
    if method == "tools/call":
        state["calls"] += 1
        args = params.get("arguments") or {}
        task_id = uuid.uuid4().hex
        state["tasks"][task_id] = {
            "status": "working",
            "due": time.time() + float(args["seconds"]),
            "label": args["label"],
        }
        save(state)
        if "task" not in params:
            raise LookupError("job must be called as a task")
        return {"task": task_view(task_id, state["tasks"][task_id])}
    task_id = params.get("taskId", "")
    task = state["tasks"].get(task_id)
    if task is None:
        raise LookupError(f"Task not found: {task_id}")
    if method == "tasks/get":
        return task_view(task_id, task)
    if method == "tasks/cancel":
        task["status"] = "cancelled"
        save(state)
        return task_view(task_id, task)
    if method == "tasks/result":
        view = task_view(task_id, task)
        result = {"label": task["label"], "task": task_id}
        return {
            "content": [{"type": "text", "text": json.dumps(result)}],
            "structuredContent": result,
            "isError": view["status"] != "completed",
        }
    raise NotImplementedError(method)


def main() -> None:
    for line in sys.stdin:
        message = json.loads(line)
        if "id" not in message:
            continue  # notifications
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"]}
        try:
            reply["result"] = handle(message["method"], message.get("params") or {})
        except LookupError as exc:
            reply["error"] = {"code": -32602, "message": str(exc)}
        except NotImplementedError as exc:
            reply["error"] = {"code": -32601, "message": f"Method not found: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
