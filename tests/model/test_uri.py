"""Tool URIs: DESIGN §2's examples, parse/format round-trips, and malformed strings."""

from __future__ import annotations

import operator
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sire.model.uri import ToolURI, URIError

bounded = settings(max_examples=200, deadline=None, derandomize=True, database=None)


@pytest.mark.parametrize(
    ("text", "scheme", "target", "tool", "sep", "is_url"),
    [
        ("sire:local/file.write", "sire", "local", "file.write", "/", False),
        ("mcp:http://host:8000/mcp#math.add", "mcp", "http://host:8000/mcp", "math.add", "#", True),
        ("mcp:https://host/mcp#math.add", "mcp", "https://host/mcp", "math.add", "#", True),
        ("mcp:calc#math.add", "mcp", "calc", "math.add", "#", False),
        ("jsonrpc:http://host/rpc#math.add", "jsonrpc", "http://host/rpc", "math.add", "#", True),
    ],
)
def test_the_design_examples_parse_into_their_parts(
    text: str, scheme: str, target: str, tool: str, sep: str, is_url: bool
) -> None:
    uri = ToolURI.parse(text)
    assert (uri.scheme, uri.target, uri.tool, uri.sep) == (scheme, target, tool, sep)
    assert uri.is_url is is_url
    assert str(uri) == text


def test_a_slash_separated_tool_name_may_itself_contain_slashes() -> None:
    uri = ToolURI.parse("sire:local/fs/read")
    assert (uri.target, uri.tool) == ("local", "fs/read")


def test_the_last_hash_separates_target_and_tool() -> None:
    uri = ToolURI.parse("mcp:http://host/mcp#frag#add")
    assert (uri.target, uri.tool) == ("http://host/mcp#frag", "add")


def test_a_tool_uri_is_a_hashable_value() -> None:
    assert ToolURI.parse("mcp:calc#add") == ToolURI("mcp", "calc", "add")
    assert len({ToolURI.parse("mcp:calc#add"), ToolURI("mcp", "calc", "add", "#")}) == 1
    with pytest.raises(AttributeError):
        ToolURI.parse("mcp:calc#add").tool = "sub"  # type: ignore[misc]


LOWER = string.ascii_lowercase
ALNUM = string.ascii_letters + string.digits

schemes = st.builds(
    operator.add, st.sampled_from(LOWER), st.text(LOWER + string.digits, max_size=5)
)
tools = st.builds(operator.add, st.sampled_from(ALNUM + "_"), st.text(ALNUM + "_.-", max_size=20))
# A '/'-separated target is a name: the first '/' ends it.
names = st.text(ALNUM + "_.-:@ ", min_size=1, max_size=20)
# A '#'-separated target may be anything without '#', an endpoint URL included.
urls = st.builds(
    "{}://{}:{}/{}".format,
    st.sampled_from(["http", "https"]),
    st.text(LOWER + string.digits + ".-", min_size=1, max_size=15),
    st.integers(1, 65535),
    st.text(LOWER + string.digits + "/._-", max_size=15),
)
hash_targets = names | urls | st.text(min_size=1, max_size=20).filter(lambda t: "#" not in t)

uris = st.builds(ToolURI, schemes, names, tools, st.just("/")) | st.builds(
    ToolURI, schemes, hash_targets, tools, st.just("#")
)


@bounded
@given(uris)
def test_formatting_then_parsing_gives_the_same_uri(uri: ToolURI) -> None:
    parsed = ToolURI.parse(str(uri))
    assert parsed == uri
    assert parsed.is_url == ("://" in uri.target)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("nope", "is not a tool URI"),
        ("", "is not a tool URI"),
        (":local/echo", "is not a tool URI"),
        ("1sire:local/echo", "is not a tool URI"),
        ("Sire:local/echo", "is not a tool URI"),
        ("si re:local/echo", "is not a tool URI"),
        ("sire:", "names no tool"),
        ("sire:local", "names no tool"),
        ("mcp:http://host/mcp", "names no tool"),
        ("mcp:srv#", "invalid tool name ''"),
        ("sire:local/", "invalid tool name ''"),
        ("mcp:#add", "names no server or target before '#'"),
        ("sire:/echo", "names no server or target before '/'"),
        ("mcp:srv#-add", "invalid tool name '-add'"),
        ("mcp:srv#add me", "invalid tool name 'add me'"),
        ("mcp:srv#add\n", "invalid tool name"),
        ("mcp:srv#" + "a" * 129, "at most 128"),
    ],
)
def test_a_malformed_uri_raises_uri_error_saying_why(text: str, why: str) -> None:
    with pytest.raises(URIError) as caught:
        ToolURI.parse(text)
    assert why in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_tool_name_of_128_characters_is_accepted() -> None:
    assert ToolURI.parse("mcp:srv#" + "a" * 128).tool == "a" * 128
