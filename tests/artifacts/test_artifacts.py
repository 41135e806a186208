"""The artifact store (issue 8, item 4): large outputs leave the state database.

Real parts throughout: `sire` commands on the default SQLite file, artifacts on disk
and in an S3-compatible server (moto, a real process speaking S3 over HTTP; see
conftest.py). The step row keeps only a URI; dependents, a resume and `execution show`
read the output back; `sire execution prune` removes the artifacts with the execution.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from sire.artifacts import REF, Artifacts, LocalArtifacts, S3Artifacts, is_ref, open_artifacts
from sire.errors import ConfigError, StoreError

from .conftest import Bucket

N = 300_000  # characters of the large output: above the default 256 KiB threshold

WORKFLOW = """\
id: big
inputs:
  n: {type: integer, default: 300000}
  gate: {type: string, default: gate.txt}
steps:
  - id: make
    tool: sire:local/text.template
    with: {template: "{{ 'x' * inputs.n }}"}
  - id: check
    tool: sire:local/file.read
    needs: [make]
    with: {path: "{{ inputs.gate }}"}
  - id: use
    tool: sire:local/text.template
    needs: [make, check]
    with: {template: "n={{ steps.make.output.text | length }}"}
outputs:
  length: "{{ steps.use.output.text }}"
  text: "{{ steps.make.output.text }}"
"""


def stored_outputs(home: Path, execution_id: str) -> dict[str, Any]:
    """What the state database holds, read with sqlite3 itself."""
    with sqlite3.connect(home / "sire.db") as conn:
        rows = conn.execute(
            "SELECT key, output FROM steps WHERE execution_id = ?", (execution_id,)
        ).fetchall()
        (outputs,) = conn.execute(
            "SELECT outputs FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
    return {"steps": {key: json.loads(o) if o else None for key, o in rows}, "outputs": outputs}


def run_big(
    sire: Any, write: Any, tmp_path: Path, *extra: str, gate: bool = True
) -> dict[str, Any]:
    """Run the workflow above; its `check` step fails unless the gate file exists."""
    if gate:
        (tmp_path / "gate.txt").write_text("open")
    path = write(WORKFLOW)
    result = sire("run", str(path), "--workspace", str(tmp_path), "--json", *extra)
    document: dict[str, Any] = result.json()
    return document


def test_a_large_output_is_stored_as_an_artifact_and_read_back_everywhere(
    sire: Any, write: Any, tmp_path: Path, sire_home: Path
) -> None:
    document = run_big(sire, write, tmp_path)
    assert document["status"] == "completed", document["error"]
    assert document["outputs"]["length"] == f"n={N}"
    execution_id = document["execution_id"]

    stored = stored_outputs(sire_home, execution_id)
    ref = stored["steps"]["make"]
    assert is_ref(ref), "the step row keeps only the reference"
    assert ref["bytes"] == len(json.dumps({"text": "x" * N}, separators=(",", ":")))
    assert ref[REF].startswith((sire_home / "artifacts" / execution_id).as_uri())
    assert stored["steps"]["use"] == {"text": f"n={N}"}  # small: kept inline
    assert len(stored["outputs"]) < 1000  # the workflow's outputs went out too

    shown = sire("execution", "show", execution_id, "--json").json()
    assert shown["steps"]["make"]["output"] == {"text": "x" * N}
    assert shown["outputs"]["text"] == "x" * N
    text = sire("execution", "show", execution_id)
    assert text.code == 0
    assert f'"length": "n={N}"' in text.out


def test_outputs_under_the_threshold_stay_in_the_row_and_the_threshold_is_configurable(
    sire: Any, write: Any, tmp_path: Path, sire_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = run_big(sire, write, tmp_path, "-i", "n=1000")
    assert stored_outputs(sire_home, document["execution_id"])["steps"]["make"] == {
        "text": "x" * 1000
    }
    assert not (sire_home / "artifacts").exists()

    monkeypatch.setenv("SIRE_ARTIFACT_THRESHOLD", "100")
    document = run_big(sire, write, tmp_path, "-i", "n=1000")
    assert is_ref(stored_outputs(sire_home, document["execution_id"])["steps"]["make"])


def test_a_resume_reads_the_artifacts_of_completed_steps_for_their_dependents(
    sire: Any, write: Any, tmp_path: Path
) -> None:
    document = run_big(sire, write, tmp_path, gate=False)
    assert document["status"] == "failed"  # no gate.txt yet
    (tmp_path / "gate.txt").write_text("open")

    resumed = sire("execution", "resume", document["execution_id"], "--json").json()
    assert resumed["status"] == "completed", resumed["error"]
    assert resumed["steps"]["make"]["attempts"] == 1  # not run again: read back
    assert resumed["outputs"] == {"length": f"n={N}", "text": "x" * N}


def test_prune_removes_executions_with_their_artifacts_and_keeps_the_rest(
    sire: Any, write: Any, tmp_path: Path, sire_home: Path
) -> None:
    done = run_big(sire, write, tmp_path)["execution_id"]
    waiting = sire("run", str(write(WORKFLOW)), "--detach", "--json").json()["execution_id"]
    assert (sire_home / "artifacts" / done).is_dir()

    pruned = sire("execution", "prune", "--older-than", "0s", "--json")
    assert pruned.code == 0, pruned.err
    assert pruned.json() == {"pruned": [done], "artifacts": 2}
    assert not (sire_home / "artifacts" / done).exists()
    missing = sire("execution", "show", done)
    assert missing.code == 2
    assert done in missing.err
    assert sire("execution", "show", waiting).code == 0  # pending: never pruned

    again = sire("execution", "prune", "--older-than", "0s")
    assert again.code == 0
    assert again.out.strip() == "pruned 0 executions (0 artifacts)"


def test_prune_keeps_executions_younger_than_older_than(
    sire: Any, write: Any, tmp_path: Path
) -> None:
    done = run_big(sire, write, tmp_path, "-i", "n=10")["execution_id"]
    assert sire("execution", "prune", "--older-than", "1h", "--json").json()["pruned"] == []
    assert sire("execution", "show", done).code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "soon"], "--older-than 'soon':"),
        (["--older-than", "1d", "--status", "running"], "--status running: only finished"),
    ],
)
def test_prune_refuses_bad_options_in_one_sentence(
    sire: Any, args: list[str], message: str
) -> None:
    result = sire("execution", "prune", *args)
    assert result.code == 2
    assert message in result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("SIRE_ARTIFACTS", "ftp://host/x", "unknown scheme 'ftp://'"),
        ("SIRE_ARTIFACTS", "s3:///no-bucket", "no bucket"),
        ("SIRE_ARTIFACT_THRESHOLD", "big", "is not a size in bytes"),
    ],
)
def test_a_bad_artifact_setting_is_one_sentence_and_exit_3(
    sire: Any,
    write: Any,
    monkeypatch: pytest.MonkeyPatch,
    env: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(env, value)
    result = sire("run", str(write(WORKFLOW)), "-i", "n=1")
    assert result.code == 3
    assert message in result.err
    assert "Traceback" not in result.err


def test_a_missing_or_tampered_artifact_fails_show_in_one_sentence(
    sire: Any, write: Any, tmp_path: Path, sire_home: Path
) -> None:
    execution_id = run_big(sire, write, tmp_path)["execution_id"]
    files = list((sire_home / "artifacts" / execution_id).glob("*.json"))
    for path in files:
        path.write_bytes(path.read_bytes().replace(b"xxx", b"yyy", 1))
    result = sire("execution", "show", execution_id)
    assert result.code == 3
    assert "is corrupt: its content does not match its name" in result.err

    for path in files:
        path.unlink()
    result = sire("execution", "show", execution_id)
    assert result.code == 3
    assert "is missing" in result.err
    assert "Traceback" not in result.err


# -- the stores themselves: the same round trip on disk and on S3 -----------------------


@pytest.fixture(params=["local", "s3"])
def artifacts(request: pytest.FixtureRequest, tmp_path: Path) -> Artifacts:
    if request.param == "local":
        return Artifacts(open_artifacts(str(tmp_path / "artifacts")), threshold=10)
    bucket: Bucket = request.getfixturevalue("bucket")
    return Artifacts(open_artifacts(f"s3://{bucket.name}/runs"), threshold=10)


async def test_round_trip_content_addressed_and_deleted_by_execution(
    artifacts: Artifacts,
) -> None:
    small = {"a": 1}
    large = {"text": "é" * 100}
    assert await artifacts.offload("e1", small) is small
    ref = await artifacts.offload("e1", large)
    assert is_ref(ref)
    assert ref["bytes"] == len(
        json.dumps(large, ensure_ascii=False, separators=(",", ":")).encode()
    )
    assert await artifacts.offload("e1", dict(large)) == ref  # same content, same name
    other = await artifacts.offload("e2", large)
    assert other[REF] != ref[REF]  # named under its own execution
    assert await artifacts.resolve(ref) == large
    assert await artifacts.resolve(small) is small

    assert await artifacts.store.delete_execution("e1") == 1
    with pytest.raises(StoreError, match="is missing"):
        await artifacts.resolve(ref)
    assert await artifacts.resolve(other) == large
    assert await artifacts.store.delete_execution("e1") == 0


async def test_a_reference_resolves_through_its_own_store_whatever_is_configured(
    tmp_path: Path, bucket: Bucket
) -> None:
    on_s3 = Artifacts(open_artifacts(f"s3://{bucket.name}/runs"), threshold=0)
    ref = await on_s3.offload("e1", {"n": 1})
    local = Artifacts(LocalArtifacts(tmp_path), threshold=0)
    assert await local.resolve(ref) == {"n": 1}
    assert bucket.keys("runs/e1/") == [ref[REF].removeprefix(f"s3://{bucket.name}/")]


def test_s3_without_the_bucket_fails_in_one_sentence(bucket: Bucket) -> None:
    store = S3Artifacts("no-such-bucket-here", "")
    with pytest.raises(StoreError, match="cannot write"):
        asyncio.run(store.put("e1", "0" * 64, b"{}"))
    with pytest.raises(ConfigError, match="unknown scheme"):
        open_artifacts("gs://bucket")


def test_a_workflow_run_and_prune_on_s3(
    sire: Any,
    write: Any,
    tmp_path: Path,
    sire_home: Path,
    bucket: Bucket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIRE_ARTIFACTS", f"s3://{bucket.name}/sire")
    document = run_big(sire, write, tmp_path)
    assert document["status"] == "completed", document["error"]
    execution_id = document["execution_id"]
    assert len(bucket.keys(f"sire/{execution_id}/")) == 2  # the step's and the outputs'
    ref = stored_outputs(sire_home, execution_id)["steps"]["make"]
    assert ref[REF].startswith(f"s3://{bucket.name}/sire/{execution_id}/")
    shown = sire("execution", "show", execution_id, "--json").json()
    assert shown["steps"]["make"]["output"] == {"text": "x" * N}

    pruned = sire("execution", "prune", "--older-than", "0s", "--json").json()
    assert pruned == {"pruned": [execution_id], "artifacts": 2}
    assert bucket.keys() == []
