"""DispatcherMux: routing by scheme, factories built once, entry-point plugins, closing."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sire.dispatch.dispatcher import DispatchContext, Dispatcher
from sire.dispatch.mux import DispatcherMux
from sire.errors import ToolNotFoundError
from sire.model.uri import ToolURI
from sire.model.workflow import ServerSpec

CTX = DispatchContext(execution_id="e1", step_id="s1")
SERVERS = {"calc": ServerSpec(url="http://localhost:9000/mcp")}


def uri(text: str) -> ToolURI:
    return ToolURI.parse(text)


class RecordingDispatcher:
    """A real, tiny Dispatcher: answers with its name and records what it was asked."""

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.options = dict(options) if options is not None else None
        self.calls: list[tuple[DispatchContext, str, dict[str, Any]]] = []
        self.checked: list[tuple[str, Mapping[str, ServerSpec]]] = []
        self.closed = 0

    async def dispatch(
        self, ctx: DispatchContext, tool: ToolURI, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        self.calls.append((ctx, str(tool), dict(params)))
        return {"dispatcher": self.name, "tool": tool.tool}

    def check(self, tool: ToolURI, servers: Mapping[str, ServerSpec]) -> None:
        if tool.tool == "missing":
            raise ToolNotFoundError(f"no tool 'missing' on {self.name}", tool_uri=str(tool))
        self.checked.append((str(tool), servers))

    async def aclose(self) -> None:
        self.closed += 1


class FailingToClose(RecordingDispatcher):
    async def aclose(self) -> None:
        self.closed += 1
        raise RuntimeError(f"{self.name} failed to close")


class Factory:
    """A dispatcher factory that counts how often, and with which options, it builds."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.built: list[RecordingDispatcher] = []

    def __call__(self, options: Mapping[str, Any]) -> RecordingDispatcher:
        dispatcher = RecordingDispatcher(self.name, options)
        self.built.append(dispatcher)
        return dispatcher


def test_the_mux_is_itself_a_dispatcher() -> None:
    assert isinstance(DispatcherMux(entry_points=False), Dispatcher)


async def test_dispatch_routes_each_call_to_the_dispatcher_of_its_scheme() -> None:
    sire, mcp = RecordingDispatcher("sire"), RecordingDispatcher("mcp")
    mux = DispatcherMux({"sire": sire, "mcp": mcp}, entry_points=False)

    first = await mux.dispatch(CTX, uri("sire:local/echo"), {"text": "hi"})
    second = await mux.dispatch(CTX, uri("mcp:calc#math.add"), {"a": 1})

    assert first == {"dispatcher": "sire", "tool": "echo"}
    assert second == {"dispatcher": "mcp", "tool": "math.add"}
    assert sire.calls == [(CTX, "sire:local/echo", {"text": "hi"})]
    assert mcp.calls == [(CTX, "mcp:calc#math.add", {"a": 1})]


async def test_register_adds_a_scheme_after_construction() -> None:
    mux = DispatcherMux(entry_points=False)
    late = RecordingDispatcher("late")

    mux.register("late", late)

    assert await mux.dispatch(CTX, uri("late:x#t"), {}) == {"dispatcher": "late", "tool": "t"}
    assert mux.schemes() == ["late"]


async def test_register_factory_builds_the_dispatcher_once_on_first_use_with_its_options() -> None:
    factory = Factory("mcp")
    mux = DispatcherMux(options={"mcp": {"timeout": 5}}, entry_points=False)
    mux.register_factory("mcp", factory)

    assert factory.built == []
    await mux.dispatch(CTX, uri("mcp:calc#a"), {})
    await mux.dispatch(CTX, uri("mcp:calc#b"), {})
    mux.check(uri("mcp:calc#c"), SERVERS)

    [built] = factory.built
    assert built.options == {"timeout": 5}
    assert [call[1] for call in built.calls] == ["mcp:calc#a", "mcp:calc#b"]
    assert mux.resolve("mcp") is built


async def test_a_factory_without_options_is_given_an_empty_mapping() -> None:
    factory = Factory("jsonrpc")
    mux = DispatcherMux(
        factories={"jsonrpc": factory}, options={"mcp": {"x": 1}}, entry_points=False
    )

    await mux.dispatch(CTX, uri("jsonrpc:http://h/rpc#m"), {})

    assert factory.built[0].options == {}


def test_check_builds_a_factory_dispatcher_too() -> None:
    factory = Factory("mcp")
    mux = DispatcherMux(factories={"mcp": factory}, entry_points=False)

    mux.check(uri("mcp:calc#add"), SERVERS)

    assert [d.checked for d in factory.built] == [[("mcp:calc#add", SERVERS)]]


async def test_register_replaces_a_factory_for_the_same_scheme() -> None:
    factory = Factory("old")
    mux = DispatcherMux(factories={"s": factory}, entry_points=False)

    mux.register("s", RecordingDispatcher("new"))

    assert await mux.dispatch(CTX, uri("s:x#t"), {}) == {"dispatcher": "new", "tool": "t"}
    assert factory.built == []


async def test_register_factory_replaces_a_dispatcher_for_the_same_scheme() -> None:
    mux = DispatcherMux({"s": RecordingDispatcher("old")}, entry_points=False)

    mux.register_factory("s", Factory("new"))

    assert await mux.dispatch(CTX, uri("s:x#t"), {}) == {"dispatcher": "new", "tool": "t"}


def test_schemes_lists_dispatchers_and_factories_sorted() -> None:
    mux = DispatcherMux(
        {"sire": RecordingDispatcher("sire")},
        factories={"mcp": Factory("mcp"), "jsonrpc": Factory("jsonrpc")},
        entry_points=False,
    )

    assert mux.schemes() == ["jsonrpc", "mcp", "sire"]


async def test_an_unknown_scheme_raises_tool_not_found_listing_the_known_schemes() -> None:
    mux = DispatcherMux(
        {"sire": RecordingDispatcher("sire")}, factories={"mcp": Factory("mcp")}, entry_points=False
    )

    with pytest.raises(ToolNotFoundError) as caught:
        await mux.dispatch(CTX, uri("ftp:host#get"), {})

    assert str(caught.value) == "unknown tool scheme 'ftp:' (known: mcp, sire)"
    assert caught.value.retryable is False


def test_an_unknown_scheme_on_an_empty_mux_says_none_are_known() -> None:
    with pytest.raises(ToolNotFoundError, match=r"\(known: none\)"):
        DispatcherMux(entry_points=False).resolve("ftp")


async def test_dispatching_an_unknown_scheme_names_the_tool_uri() -> None:
    mux = DispatcherMux(entry_points=False)

    with pytest.raises(ToolNotFoundError) as caught:
        await mux.dispatch(CTX, uri("ftp:host#get"), {})

    assert caught.value.tool_uri == "ftp:host#get"
    assert str(caught.value) == "unknown tool scheme 'ftp:' (known: none)"


def test_check_delegates_to_the_dispatcher_of_the_scheme_with_the_servers() -> None:
    sire, mcp = RecordingDispatcher("sire"), RecordingDispatcher("mcp")
    mux = DispatcherMux({"sire": sire, "mcp": mcp}, entry_points=False)

    mux.check(uri("mcp:calc#math.add"), SERVERS)

    assert mcp.checked == [("mcp:calc#math.add", SERVERS)]
    assert sire.checked == []
    assert mcp.calls == []


def test_check_of_an_unknown_scheme_raises_tool_not_found_with_the_tool_uri() -> None:
    mux = DispatcherMux({"sire": RecordingDispatcher("sire")}, entry_points=False)

    with pytest.raises(ToolNotFoundError) as caught:
        mux.check(uri("ftp:host#get"), {})

    assert caught.value.tool_uri == "ftp:host#get"
    assert str(caught.value) == "unknown tool scheme 'ftp:' (known: sire)"


def test_check_passes_on_the_dispatchers_own_tool_not_found() -> None:
    mux = DispatcherMux({"mcp": RecordingDispatcher("mcp")}, entry_points=False)

    with pytest.raises(ToolNotFoundError) as caught:
        mux.check(uri("mcp:calc#missing"), SERVERS)

    assert str(caught.value) == "no tool 'missing' on mcp"
    assert caught.value.tool_uri == "mcp:calc#missing"


async def test_aclose_closes_every_built_dispatcher_and_builds_no_other() -> None:
    sire, mcp = RecordingDispatcher("sire"), RecordingDispatcher("mcp")
    used, unused = Factory("used"), Factory("unused")
    mux = DispatcherMux(
        {"sire": sire, "mcp": mcp}, factories={"used": used, "unused": unused}, entry_points=False
    )
    await mux.dispatch(CTX, uri("used:x#t"), {})

    await mux.aclose()

    assert (sire.closed, mcp.closed, used.built[0].closed) == (1, 1, 1)
    assert unused.built == []


async def test_aclose_closes_the_other_dispatchers_when_one_fails_to_close() -> None:
    broken, healthy = FailingToClose("broken"), RecordingDispatcher("healthy")
    mux = DispatcherMux({"broken": broken, "healthy": healthy}, entry_points=False)

    with pytest.raises((RuntimeError, ExceptionGroup)):
        await mux.aclose()

    assert (broken.closed, healthy.closed) == (1, 1)


async def test_aclose_raises_the_one_close_error_as_it_is() -> None:
    broken, healthy = FailingToClose("broken"), RecordingDispatcher("healthy")
    mux = DispatcherMux({"healthy": healthy, "broken": broken}, entry_points=False)

    with pytest.raises(RuntimeError, match=r"^broken failed to close$"):
        await mux.aclose()

    assert (broken.closed, healthy.closed) == (1, 1)


async def test_aclose_raises_several_close_errors_as_an_exception_group() -> None:
    first, second = FailingToClose("first"), FailingToClose("second")
    healthy = RecordingDispatcher("healthy")
    mux = DispatcherMux({"a": first, "b": healthy, "c": second}, entry_points=False)

    with pytest.raises(ExceptionGroup) as caught:
        await mux.aclose()

    assert [str(exc) for exc in caught.value.exceptions] == [
        "first failed to close",
        "second failed to close",
    ]
    assert (first.closed, healthy.closed, second.closed) == (1, 1, 1)
    await mux.aclose()  # nothing left to close
    assert (first.closed, healthy.closed, second.closed) == (1, 1, 1)


# --- plugins from the `sire.dispatchers` entry-point group, installed for real ---------------

PLUGIN_SOURCE = '''\
"""A `sire.dispatchers` plugin installed by the tests."""

built = []


class PlugDispatcher:
    def __init__(self, options):
        self.options = dict(options)
        self.closed = False

    async def dispatch(self, ctx, tool, params):
        return {"via": "plugin", "tool": str(tool), "params": dict(params), "options": self.options}

    def check(self, tool, servers):
        return None

    async def aclose(self):
        self.closed = True


def factory(options):
    dispatcher = PlugDispatcher(options)
    built.append(dispatcher)
    return dispatcher
'''

PLUGIN_MODULE = "sire_plugin_fixture"


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Install a distribution whose `sire.dispatchers` entry point `plug` is a factory."""
    site = tmp_path / "site"
    site.mkdir()
    (site / f"{PLUGIN_MODULE}.py").write_text(PLUGIN_SOURCE, encoding="utf-8")
    info = site / f"{PLUGIN_MODULE}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: sire-plugin-fixture\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[sire.dispatchers]\nplug = {PLUGIN_MODULE}:factory\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(site))  # also invalidates importlib's caches
    yield
    sys.modules.pop(PLUGIN_MODULE, None)


def plugin_module() -> ModuleType:
    return sys.modules[PLUGIN_MODULE]


@pytest.mark.usefixtures("plugin")
async def test_an_entry_point_plugin_dispatches_its_scheme_with_its_options() -> None:
    mux = DispatcherMux(options={"plug": {"region": "eu"}}, entry_points=True)

    result = await mux.dispatch(CTX, uri("plug:x#tool"), {"n": 1})

    assert result == {
        "via": "plugin",
        "tool": "plug:x#tool",
        "params": {"n": 1},
        "options": {"region": "eu"},
    }


@pytest.mark.usefixtures("plugin")
async def test_an_entry_point_plugin_is_built_once_and_closed_with_the_mux() -> None:
    mux = DispatcherMux(entry_points=True)

    await mux.dispatch(CTX, uri("plug:x#a"), {})
    await mux.dispatch(CTX, uri("plug:x#b"), {})
    mux.check(uri("plug:x#c"), {})
    await mux.aclose()

    [built] = plugin_module().built
    assert built.closed is True


@pytest.mark.usefixtures("plugin")
def test_schemes_include_entry_point_plugins() -> None:
    mux = DispatcherMux({"sire": RecordingDispatcher("sire")}, entry_points=True)

    assert mux.schemes() == ["plug", "sire"]


@pytest.mark.usefixtures("plugin")
async def test_a_mux_without_entry_points_does_not_see_plugins() -> None:
    mux = DispatcherMux({"sire": RecordingDispatcher("sire")}, entry_points=False)

    assert mux.schemes() == ["sire"]
    with pytest.raises(ToolNotFoundError, match=r"\(known: sire\)"):
        await mux.dispatch(CTX, uri("plug:x#tool"), {})
    assert PLUGIN_MODULE not in sys.modules


@pytest.mark.usefixtures("plugin")
async def test_a_registered_scheme_wins_over_a_plugin_of_the_same_name() -> None:
    mine = RecordingDispatcher("mine")
    mux = DispatcherMux({"plug": mine}, entry_points=True)

    assert await mux.dispatch(CTX, uri("plug:x#t"), {}) == {"dispatcher": "mine", "tool": "t"}
    assert PLUGIN_MODULE not in sys.modules


@pytest.mark.usefixtures("plugin")
async def test_entry_points_are_not_scanned_when_a_registered_scheme_is_used() -> None:
    mux = DispatcherMux(
        {"sire": RecordingDispatcher("sire")}, factories={"mcp": Factory("mcp")}, entry_points=True
    )

    await mux.dispatch(CTX, uri("sire:local/echo"), {})
    await mux.dispatch(CTX, uri("mcp:calc#add"), {})
    mux.check(uri("sire:local/echo"), {})

    assert mux._plugins is None
    assert PLUGIN_MODULE not in sys.modules
