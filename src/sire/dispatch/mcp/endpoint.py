"""Endpoint: where an MCP server lives, as a hashable key (one live session per endpoint)."""

from __future__ import annotations

import shlex
from typing import NamedTuple

from sire.model.workflow import ServerSpec


class Endpoint(NamedTuple):
    """A Streamable HTTP URL with its headers, or a stdio command with its env and cwd.

    Two named servers with the same definition share one endpoint, hence one session.
    """

    url: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None

    @classmethod
    def of(cls, spec: ServerSpec) -> Endpoint:
        """The endpoint a named server's definition describes."""
        return cls(
            url=spec.url,
            headers=tuple(sorted(spec.headers.items())),
            command=tuple(spec.command),
            env=tuple(sorted(spec.env.items())),
            cwd=spec.cwd,
        )

    @property
    def is_stdio(self) -> bool:
        return self.url is None

    def describe(self) -> str:
        """The URL or the command line, for messages (headers and env are left out: secrets)."""
        return self.url if self.url is not None else shlex.join(self.command)
