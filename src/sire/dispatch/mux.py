"""DispatcherMux: routes each call to the dispatcher of its URI scheme.

Schemes are registered as instances or as factories built on first use; a scheme
that is not built in is looked up once in the `sire.dispatchers` entry-point group,
whose objects are factories `factory(options) -> Dispatcher`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sire.dispatch.dispatcher import DispatchContext, Dispatcher
from sire.errors import ToolNotFoundError, did_you_mean
from sire.model.uri import ToolURI
from sire.model.workflow import ServerSpec

ENTRY_POINT_GROUP = "sire.dispatchers"
DispatcherFactory = Callable[[Mapping[str, Any]], Dispatcher]


class DispatcherMux:
    """A Dispatcher that delegates to one dispatcher per URI scheme."""

    def __init__(
        self,
        dispatchers: Mapping[str, Dispatcher] | None = None,
        *,
        factories: Mapping[str, DispatcherFactory] | None = None,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        entry_points: bool = True,
    ) -> None:
        """Create a mux.

        Args:
            dispatchers: ready dispatchers by scheme.
            factories: dispatchers built on first use, by scheme.
            options: per-scheme options handed to factories (config.yaml `dispatchers:`).
            entry_points: whether to look unknown schemes up in `sire.dispatchers`.
        """
        self._dispatchers: dict[str, Dispatcher] = dict(dispatchers or {})
        self._factories: dict[str, DispatcherFactory] = dict(factories or {})
        self._options = options or {}
        self._entry_points = entry_points
        self._plugins: dict[str, Any] | None = None

    def register(self, scheme: str, dispatcher: Dispatcher) -> None:
        """Route `scheme:` URIs to `dispatcher`."""
        self._dispatchers[scheme] = dispatcher
        self._factories.pop(scheme, None)

    def register_factory(self, scheme: str, factory: DispatcherFactory) -> None:
        """Route `scheme:` URIs to the dispatcher `factory(options)` builds on first use."""
        self._factories[scheme] = factory
        self._dispatchers.pop(scheme, None)

    def schemes(self) -> list[str]:
        """Every scheme this mux can route, plugins included."""
        return sorted({*self._dispatchers, *self._factories, *self._plugin_entries()})

    def resolve(self, scheme: str) -> Dispatcher:
        """The dispatcher for `scheme`, built on first use.

        Raises:
            ToolNotFoundError: no dispatcher handles `scheme`.
        """
        dispatcher = self._dispatchers.get(scheme)
        if dispatcher is not None:
            return dispatcher
        factory = self._factories.get(scheme)
        if factory is None:
            entry = self._plugin_entries().get(scheme)
            if entry is None:
                known = ", ".join(self.schemes()) or "none"
                hint = did_you_mean(f"{scheme}:", [f"{s}:" for s in self.schemes()])
                raise ToolNotFoundError(
                    f"unknown tool scheme '{scheme}:' (known: {known})"
                    + (f"; {hint}" if hint else "")
                )
            factory = entry.load()
        dispatcher = factory(self._options.get(scheme, {}))
        self._dispatchers[scheme] = dispatcher
        return dispatcher

    async def dispatch(
        self, ctx: DispatchContext, tool: ToolURI, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        dispatcher = self._dispatchers.get(tool.scheme)
        if dispatcher is None:
            dispatcher = self._resolve_for(tool)
        return await dispatcher.dispatch(ctx, tool, params)

    def check(self, tool: ToolURI, servers: Mapping[str, ServerSpec]) -> None:
        self._resolve_for(tool).check(tool, servers)

    async def aclose(self) -> None:
        """Close every dispatcher built so far, even when some fail to.

        Raises:
            Exception: the one dispatcher's error, or an ExceptionGroup of several.
        """
        dispatchers, self._dispatchers = self._dispatchers, {}
        errors: list[Exception] = []
        for dispatcher in dispatchers.values():
            try:
                await dispatcher.aclose()
            except Exception as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ExceptionGroup("several dispatchers failed to close", errors)

    def _resolve_for(self, tool: ToolURI) -> Dispatcher:
        """`resolve(tool.scheme)`, naming `tool` in the error."""
        try:
            return self.resolve(tool.scheme)
        except ToolNotFoundError as exc:
            exc.tool_uri = str(tool)
            raise

    def _plugin_entries(self) -> dict[str, Any]:
        if self._plugins is None:
            self._plugins = {}
            if self._entry_points:
                from importlib.metadata import entry_points

                for entry in entry_points(group=ENTRY_POINT_GROUP):
                    self._plugins.setdefault(entry.name, entry)
        return self._plugins
