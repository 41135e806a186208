"""Configuration: `$SIRE_HOME/config.yaml`, overridden by environment variables (DESIGN §8).

Read at the edges (CLI, server, agent), never by the engine. Command-line flags
override what this returns. Without a config file nothing is imported to read it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from sire.errors import ConfigError
from sire.model.workflow import ServerSpec

DEFAULT_MAX_PAYLOAD = 10 * 1024 * 1024
DEFAULT_LEASE_TTL = 15.0
DEFAULT_ARTIFACT_THRESHOLD = 256 * 1024


class Config(NamedTuple):
    """Settings for one Sire process.

    Attributes:
        home: `$SIRE_HOME`, default `~/.sire`.
        db_url: the store URL (`--db`, `SIRE_DB`, `store.url`), None for the default.
        servers: named MCP servers, below a workflow's own `servers:`.
        exec_allow: executables the `exec` tool may run (empty: `exec` is off).
        env_allow: environment variables templates may read as `env.NAME`.
        http_allow_hosts: hosts `http.request` may reach (None: any).
        max_payload_bytes: the largest input or output a tool may take or give.
        lease_ttl: how long a driver's lease lasts unrenewed (renewed every third of it).
        artifacts_url: where outputs above `artifact_threshold` bytes go (`SIRE_ARTIFACTS`,
            `artifacts.url`); None: `home/artifacts`.
        artifact_threshold: the largest output (bytes as JSON) kept in the state database.
    """

    home: Path
    db_url: str | None = None
    servers: Mapping[str, ServerSpec] = {}
    exec_allow: tuple[str, ...] = ()
    env_allow: tuple[str, ...] = ()
    http_allow_hosts: tuple[str, ...] | None = None
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD
    lease_ttl: float = 15.0
    artifacts_url: str | None = None
    artifact_threshold: int = DEFAULT_ARTIFACT_THRESHOLD

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    def template_env(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The allow-listed environment variables, as templates see them."""
        environ = os.environ if environ is None else environ
        return {name: environ[name] for name in self.env_allow if name in environ}


def sire_home(environ: Mapping[str, str] | None = None) -> Path:
    """`$SIRE_HOME`, or `~/.sire`."""
    environ = os.environ if environ is None else environ
    home = environ.get("SIRE_HOME")
    return Path(home).expanduser() if home else Path.home() / ".sire"


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """Read `$SIRE_HOME/config.yaml` (if any) and apply environment overrides.

    Raises:
        ConfigError: the file is unreadable or a setting has the wrong shape.
    """
    environ = os.environ if environ is None else environ
    home = sire_home(environ)
    path = home / "config.yaml"
    data: dict[str, Any] = {}
    if path.exists():
        data = _read(path)
    reader = _Reader(str(path), data)
    servers = {
        name: _server(reader, name, spec) for name, spec in reader.mapping("servers").items()
    }
    hosts = reader.strings("http.allow_hosts", missing=None)
    return Config(
        home=home,
        db_url=environ.get("SIRE_DB") or reader.string("store.url"),
        servers=servers,
        exec_allow=reader.strings("exec.allow") or (),
        env_allow=reader.strings("templates.env") or (),
        http_allow_hosts=hosts,
        max_payload_bytes=reader.integer("limits.max_payload_bytes", DEFAULT_MAX_PAYLOAD),
        lease_ttl=_lease_ttl(environ, reader),
        artifacts_url=environ.get("SIRE_ARTIFACTS") or reader.string("artifacts.url"),
        artifact_threshold=_artifact_threshold(environ, reader),
    )


def _artifact_threshold(environ: Mapping[str, str], reader: _Reader) -> int:
    raw = environ.get("SIRE_ARTIFACT_THRESHOLD")
    if raw is None:
        return reader.integer("artifacts.threshold", DEFAULT_ARTIFACT_THRESHOLD)
    try:
        threshold = int(raw)
    except ValueError:
        threshold = -1
    if threshold < 0:
        raise ConfigError(f"SIRE_ARTIFACT_THRESHOLD={raw!r} is not a size in bytes (e.g. 262144)")
    return threshold


def _lease_ttl(environ: Mapping[str, str], reader: _Reader) -> float:
    raw = environ.get("SIRE_LEASE_TTL")
    if raw is None:
        return reader.duration("agent.lease_ttl", DEFAULT_LEASE_TTL)
    from sire.model.durations import parse_duration

    try:
        ttl = parse_duration(raw)
    except ValueError:
        raise ConfigError(f"SIRE_LEASE_TTL={raw!r} is not a duration (e.g. 15s)") from None
    if ttl <= 0:
        raise ConfigError("SIRE_LEASE_TTL must be more than 0")
    return ttl


def _read(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = _one_line(exc.problem or exc.context or "")
        raise ConfigError(f"{where}: the config file is not valid YAML ({problem})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path}: the config file is not valid YAML ({_one_line(str(exc))})"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config file must be a mapping")
    return data


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _Reader:
    """Typed reads of dotted keys, each failure one sentence naming the file and key.

    A reader of a nested mapping carries its `prefix` (`servers.<name>`) for messages.
    """

    def __init__(self, source: str, data: Mapping[str, Any], prefix: str = "") -> None:
        self.source = source
        self.data = data
        self.prefix = prefix

    def _get(self, key: str) -> Any:
        """The value at dotted `key`, None when absent.

        Raises:
            ConfigError: a section on the way is present but not a mapping.
        """
        node: Any = self.data
        parts = key.split(".")
        for depth, part in enumerate(parts):
            if node is None:
                return None
            if not isinstance(node, Mapping):
                raise self._fail(".".join(parts[:depth]), "a mapping")
            node = node.get(part)
        return node

    def _fail(self, key: str, expected: str) -> ConfigError:
        full = f"{self.prefix}.{key}" if self.prefix else key
        return ConfigError(f"{self.source}: '{full}' must be {expected}")

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self._get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self._fail(key, "a mapping")
        return value

    def string(self, key: str) -> str | None:
        value = self._get(key)
        if value is not None and not isinstance(value, str):
            raise self._fail(key, "a string")
        return value

    def strings(self, key: str, missing: tuple[str, ...] | None = ()) -> tuple[str, ...] | None:
        value = self._get(key)
        if value is None:
            return missing
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "a list of strings")
        return tuple(value)

    def duration(self, key: str, default: float) -> float:
        value = self._get(key)
        if value is None:
            return default
        from sire.model.durations import parse_duration

        try:
            seconds = parse_duration(value)
        except ValueError:
            raise self._fail(key, "a duration such as 15s") from None
        if seconds <= 0:
            raise self._fail(key, "more than 0")
        return seconds

    def integer(self, key: str, default: int) -> int:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise self._fail(key, "a positive integer")
        return value


def _server(reader: _Reader, name: str, spec: Any) -> ServerSpec:
    """Server `name`, read from its own mapping: a name may contain dots."""
    key = f"servers.{name}"
    if not isinstance(spec, Mapping):
        raise reader._fail(key, "a mapping with 'url' or 'command'")
    fields = _Reader(reader.source, spec, prefix=key)
    url = fields.string("url")
    command = fields.strings("command", missing=None)
    if (url is None) == (command is None):
        raise reader._fail(key, "a mapping with exactly one of 'url' or 'command'")
    return ServerSpec(
        url=url,
        headers=dict(fields.mapping("headers")),
        command=command or (),
        env=dict(fields.mapping("env")),
        cwd=fields.string("cwd"),
    )
