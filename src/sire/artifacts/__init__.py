"""The artifact store: step and workflow outputs too large for the state database.

An output whose JSON is larger than the threshold (`artifacts.threshold`, 256 KiB by
default) is written to an artifact store, and the state database keeps only a reference
in its place: `{"$artifact": URI, "bytes": N}`. The engine resolves references for
dependents (also after a resume), `sire execution show` resolves them for people, and
`sire execution prune` removes an execution's artifacts with it.

Artifacts are content-addressed: an artifact is named by the SHA-256 of its bytes,
under its execution (`<root>/<execution id>/<sha256>.json`), so a retry or a `for_each`
item giving the same output stores it once, a read checks the content against the name,
and removing an execution's artifacts is removing one prefix.

Stores, picked by the URL in `artifacts.url` / `SIRE_ARTIFACTS`:
- a directory (a path or `file://`), by default `$SIRE_HOME/artifacts`;
- S3-compatible object storage, `s3://bucket/prefix` (boto3, the `s3` extra; endpoint
  and credentials from boto3's own settings, e.g. `AWS_ENDPOINT_URL`). Agents on several
  hosts need this (or a shared directory).

A reference names its store fully, so it resolves whichever store is configured now.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

from sire.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from sire.config import Config
    from sire.model.execution import Execution

#: The key of a reference to an artifact, in place of an output.
REF = "$artifact"
DEFAULT_THRESHOLD = 256 * 1024


class ArtifactStore(Protocol):
    """Where artifacts are kept: bytes by execution and digest."""

    url: str

    async def put(self, execution_id: str, digest: str, data: bytes) -> str:
        """Keep `data` (whose SHA-256 is `digest`) durably; its URI."""
        ...

    async def get(self, uri: str) -> bytes:
        """The bytes at `uri`, one of this store's.

        Raises:
            StoreError: there are none, or they cannot be read.
        """
        ...

    async def delete_execution(self, execution_id: str) -> int:
        """Remove every artifact of the execution; how many there were."""
        ...


def is_ref(value: object) -> bool:
    """Whether `value` is a reference to an artifact (not an output itself)."""
    return type(value) is dict and REF in value and len(value) == 2 and "bytes" in value


def digest_of(ref: dict[str, Any]) -> str:
    """The SHA-256 a reference's artifact is named by."""
    return Path(urlsplit(ref[REF]).path).stem


class Artifacts:
    """Offloads large outputs to an artifact store and resolves references to them."""

    def __init__(self, store: ArtifactStore, threshold: int = DEFAULT_THRESHOLD) -> None:
        self.store = store
        self.threshold = threshold
        self._readers: dict[str, ArtifactStore] = {}

    def encode_large(self, value: object) -> bytes | None:
        """`value` as JSON bytes when it is larger than the threshold, else None."""
        data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        return data if len(data) > self.threshold else None

    async def put(self, execution_id: str, data: bytes) -> dict[str, Any]:
        """Store `data` as an artifact of the execution; the reference to keep instead."""
        digest = hashlib.sha256(data).hexdigest()
        uri = await self.store.put(execution_id, digest, data)
        return {REF: uri, "bytes": len(data)}

    async def offload(self, execution_id: str, value: Any) -> Any:
        """`value`, or a reference to it once stored when it is larger than the threshold."""
        data = self.encode_large(value)
        return value if data is None else await self.put(execution_id, data)

    async def resolve(self, value: Any) -> Any:
        """The output `value` refers to (checked against its digest), or `value` itself.

        Raises:
            StoreError: the artifact is missing, unreadable or not what its name says.
        """
        if not is_ref(value):
            return value
        uri = value[REF]
        data = await self._reader(uri).get(uri)
        digest = digest_of(value)
        if hashlib.sha256(data).hexdigest() != digest:
            raise StoreError(f"artifact {uri} is corrupt: its content does not match its name")
        return json.loads(data)

    def _reader(self, uri: str) -> ArtifactStore:
        root = uri.rsplit("/", 2)[0]
        if uri.startswith(self.store.url.rstrip("/") + "/"):
            return self.store
        reader = self._readers.get(root)
        if reader is None:
            reader = self._readers[root] = open_artifacts(root)
        return reader


def open_artifacts(url: str) -> ArtifactStore:
    """The artifact store `url` names: a directory, `file://...` or `s3://bucket/prefix`.

    Raises:
        ConfigError: the URL names no artifact store Sire knows.
    """
    if url.startswith("s3://"):
        parts = urlsplit(url)
        if not parts.netloc:
            raise ConfigError(f"artifact store '{url}': no bucket (expected s3://bucket/prefix)")
        return S3Artifacts(parts.netloc, parts.path.strip("/"))
    if url.startswith("file://"):
        return LocalArtifacts(Path(unquote(urlsplit(url).path)))
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise ConfigError(
            f"artifact store '{url}': unknown scheme '{scheme}://' "
            "(expected a directory, file:///path or s3://bucket/prefix)"
        )
    return LocalArtifacts(Path(url).expanduser())


def configured(config: Config) -> Artifacts:
    """The artifacts of a process: `artifacts.url`, or `$SIRE_HOME/artifacts` when unset."""
    url = config.artifacts_url or str(config.home / "artifacts")
    return Artifacts(open_artifacts(url), config.artifact_threshold)


async def resolve_execution(artifacts: Artifacts, execution: Execution) -> Execution:
    """`execution` with the outputs stored as artifacts read back in their place.

    Raises:
        StoreError: an artifact is missing or corrupt.
    """
    states = execution.step_states
    for key, state in states.items():
        if is_ref(state.output):
            states[key] = state._replace(output=await artifacts.resolve(state.output))
    if is_ref(execution.outputs):
        execution.outputs = await artifacts.resolve(execution.outputs)
    return execution


class LocalArtifacts:
    """Artifacts as files under a directory, written atomically and fsynced."""

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.url = self.root.as_uri()

    async def put(self, execution_id: str, digest: str, data: bytes) -> str:
        path = self.root / execution_id / f"{digest}.json"
        if not path.exists():  # content-addressed: the same name holds the same bytes
            await asyncio.to_thread(_write_atomically, path, data)
        return path.as_uri()

    async def get(self, uri: str) -> bytes:
        path = Path(unquote(urlsplit(uri).path))
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise StoreError(f"artifact {uri} is missing") from None
        except OSError as exc:
            raise StoreError(f"artifact {uri} cannot be read ({exc.strerror})") from None

    async def delete_execution(self, execution_id: str) -> int:
        return await asyncio.to_thread(self._delete, self.root / execution_id)

    @staticmethod
    def _delete(folder: Path) -> int:
        if not folder.is_dir():
            return 0
        count = 0
        for path in folder.iterdir():
            path.unlink(missing_ok=True)
            count += path.suffix == ".json"
        folder.rmdir()
        return count


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        raise StoreError(f"artifact store {path.parent}: cannot write ({exc.strerror})") from None


class S3Artifacts:
    """Artifacts as objects in an S3-compatible bucket (boto3, run in threads)."""

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            try:
                import boto3  # heavy: only for an s3:// store
            except ImportError:
                raise ConfigError(
                    f"artifact store {self.url} needs boto3 (pip install 'sire[s3]')"
                ) from None
            self._client = boto3.client("s3")
        return self._client

    async def put(self, execution_id: str, digest: str, data: bytes) -> str:
        key = f"{self.prefix}{execution_id}/{digest}.json"
        await self._call("write", self.client().put_object, Bucket=self.bucket, Key=key, Body=data)
        return f"s3://{self.bucket}/{key}"

    async def get(self, uri: str) -> bytes:
        parts = urlsplit(uri)
        key = parts.path.lstrip("/")
        client = self.client()
        try:
            reply = await self._call("read", client.get_object, Bucket=parts.netloc, Key=key)
        except StoreError as exc:
            if "NoSuchKey" in str(exc) or "404" in str(exc):
                raise StoreError(f"artifact {uri} is missing") from None
            raise
        body: bytes = await asyncio.to_thread(reply["Body"].read)
        return body

    async def delete_execution(self, execution_id: str) -> int:
        client = self.client()
        prefix = f"{self.prefix}{execution_id}/"
        count = 0
        while True:
            listed = await self._call(
                "list", client.list_objects_v2, Bucket=self.bucket, Prefix=prefix
            )
            keys = [{"Key": item["Key"]} for item in listed.get("Contents", ())]
            if not keys:
                return count
            await self._call(
                "delete",
                client.delete_objects,
                Bucket=self.bucket,
                Delete={"Objects": keys, "Quiet": True},
            )
            count += len(keys)

    async def _call(self, what: str, method: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(method, **kwargs)
        except Exception as exc:  # botocore's errors: one sentence, no traceback
            raise StoreError(f"artifact store {self.url}: cannot {what} ({exc})") from None
