"""Templates cannot reach Python internals, exhaust memory or run unbounded: a corpus of
known Jinja2 sandbox escapes and bombs, each refused as a TemplateError (a failed step)
or rendered harmlessly, through the templating layer, the loader and the engine, and
through `text.template`."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import textwrap
from typing import Any

import pytest

from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.inprocess import InProcessDispatcher
from sire.dispatch.mux import DispatcherMux
from sire.engine import sandbox
from sire.engine.engine import Engine
from sire.engine.templating import Secrets, compile_value
from sire.errors import DefinitionError, TemplateError, ToolError
from sire.model.execution import Execution, ExecutionStatus, StepStatus, new_execution_id
from sire.model.loader import parse_workflow
from sire.model.uri import ToolURI
from sire.model.workflow import Step, Workflow
from sire.testing import FakeClock, MemoryStore
from sire.tools import ToolSettings, builtin_server

SECRET = "s3cret-value-42"
WHERE = "steps.t.with.v"

#: Escapes, leaks and bombs; each must fail with a TemplateError.
REFUSED = [
    # Python internals through attributes
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ (1).__class__ }}",
    "{{ inputs.__class__ }}",
    "{{ inputs['__class__'] }}",
    "{{ steps.a.output.__class__ }}",
    "{{ env.__class__.__base__ }}",
    "{{ execution.__class__ }}",
    "{{ dict.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ lipsum.__globals__.os.popen('id').read() }}",
    "{{ range.__self__ }}",
    "{{ cycler(1, 2).next.__self__ }}",
    "{{ 'a'.encode.__self__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self.__dict__ }}",
    "{% for x in [1] %}{{ loop.__class__ }}{% endfor %}",
    "{{ (inputs.l | map('string')).gi_frame }}",
    "{{ (inputs.l | map('string')).gi_frame.f_globals }}",
    # names that do not exist in a template
    "{{ config }}",
    "{{ request }}",
    "{{ os }}",
    "{{ __import__('os') }}",
    "{{ __builtins__ }}",
    "{{ get_env() }}",
    "{{ url_for.__globals__ }}",
    "{% include 'x' %}",
    "{% import 'os' as os %}",
    "{% extends 'base' %}",
    # format strings and filters that reach attributes
    "{{ '{0.__class__}'.format(inputs) }}",
    "{{ '{0.__class__.__mro__}'.format('') }}",
    "{{ '{x.__class__}'.format_map({'x': 1}) }}",
    "{{ inputs | attr('__class__') }}",
    "{{ '' | attr('__class__') | attr('__mro__') }}",
    "{{ inputs.l | sort(attribute='__class__') }}",
    "{{ [inputs] | map(attribute='__class__') | list }}",
    # mutating the context
    "{{ inputs.update({'a': 1}) }}",
    "{{ steps.update({'a': 1}) }}",
    "{{ steps.pop('a') }}",
    "{{ inputs.l.append(1) }}",
    "{{ inputs.l.pop() }}",
    "{{ env.clear() }}",
    "{{ execution.setdefault('id', 'x') }}",
    # showing code or Jinja objects (their text reveals internals, such as addresses)
    "{{ self }}",
    "{{ range }}",
    "{{ lipsum }}",
    "{{ namespace }}",
    "{{ joiner }}",
    "{{ cycler(1, 2) }}",
    "{{ namespace(a=1) }}",
    "{{ [range] }}",
    "x{{ dict }}y",
    "{{ 'a'.upper }}",
    # memory bombs
    "{{ range(10**9) }}",
    "{{ 'x' * 10**10 }}",
    "{{ 'x' * 100000 * 100000 }}",
    "{{ [1] * 10**9 }}",
    "{{ 9 ** (10 ** 7) }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '%0999999999d' | format(1) }}",
    "{{ '%*d' % (10**9, 1) }}",
    "{{ '{:>9999999999}'.format(1) }}",
    "{{ '{:.999999999f}'.format(1.0) }}",
    "{{ '{0:{1}}'.format(1, 10**9) }}",
    "{{ ('{0}' * 100000).format('x' * 1000) }}",
    "{{ 'x' | center(10**10) }}",
    "{{ 'x'.center(10**10) }}",
    "{{ 'x'.ljust(10**10) }}",
    "{{ 'x'.zfill(10**10) }}",
    "{{ (1).to_bytes(10**10, 'big') }}",
    "{{ ('\t' * 1000).expandtabs(100000) }}",
    "{{ ('a' * 100000).translate({97: 'x' * 1000000}) }}",
    "{{ ('x' * 10000) | replace('', 'x' * 10000) }}",
    "{{ ('x' * 10000).replace('', 'x' * 10000) }}",
    "{{ ('x\n' * 100000) | indent(1000) }}",
    "{{ 'ab' | wordwrap(1, wrapstring='x' * 100000000) }}",
    "{{ lipsum(10**6) }}",
    "{{ [1] | batch(10**9, 'x') | list | length }}",
    "{{ [1] | slice(10**9) | list | length }}",
    "{{ [[1] * 1000] * 1000 | sum(start=[]) }}",
    "{{ dict.fromkeys(range(100000), 'x' * 100000) }}",
    "{{ ['x' * 1000000] * 10000 }}",
    "x{{ ['x' * 1000000] * 10000 }}",
    "{{ (['x' * 1000000] * 10000) | string }}",
    "{{ (['x' * 1000000] * 10000) | join }}",
    "{{ (['x' * 1000000] * 10000) | tojson }}",
    "{{ [1, 2] | tojson(indent=10**9) }}",
    "{{ ''.join(['x' * 1000000] * 10000) }}",
    "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s | length }}",
    "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}"
    "{% endfor %}{{ ns.s | length }}",
    "{% set big = 'x' * 1000000 %}{% for i in range(100) %}{{ big }}{% endfor %}",
    "{% for i in range(100000) %}" + "x" * 200 + "{% endfor %}",
    "{% macro m() %}{% for i in range(1000) %}" + "x" * 1000 + "{% endfor %}{% endmacro %}"
    "{% for i in range(100) %}{% set _ = m() %}{% endfor %}",
    # unbounded work
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for i in inputs.l %}{% for j in inputs.l %}{% for k in inputs.l %}{% endfor %}"
    "{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{% for j in inputs.l if j < 0 %}{% endfor %}{% endfor %}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}",
]

#: Looks hostile, is harmless: renders to this value.
HARMLESS = [
    ("{{ 10 ** 10 ** 10 }}", 10**100),  # Jinja's ** is left-associative
    ("{{ 'a' | attr('format')('{0.__class__}', 1) }}", "a"),  # 'a' has no field to fill
    ("{{ range(3) }}", [0, 1, 2]),  # a lazy value becomes data
    ("{{ inputs.l[:3] | map('string') }}", ["0", "1", "2"]),
    ("{{ dict.fromkeys(range(100000), 'x' * 100000) | length }}", 100000),
    ("{{ inputs | list }}", ["name", "l"]),
    ("{% set inputs = 3 %}{{ inputs }}", "3"),  # a template's own variable
    ("{{ namespace(a=1).a }}", 1),
    ("{{ ('x' * 1000) | length }}", 1000),
    ("{{ 'x' | center(9) }}", "    x    "),
    ("{{ '%05d' % 42 }}", "00042"),
    ("{{ '{:>4}'.format(7) }}", "   7"),
    ("{{ [1, 2] | join('-') }}", "1-2"),
    ("{% for i in range(3) %}{{ i }}{% endfor %}", "012"),
    ("{{ 'ab' ~ 1 ~ [2] }}", "ab1[2]"),
    ("{{ steps.a.output.text | upper }}", "HI"),
    ("{% for x in [1, 2] %}{{ x }}{{ ',' if not loop.last }}{% endfor %}", "1,2"),
]


def context() -> dict[str, Any]:
    """The names an engine's templates see, as `_Run` builds them."""
    return {
        "inputs": {"name": "ann", "l": list(range(200))},
        "steps": {"a": {"output": {"text": "hi"}, "status": "completed"}},
        "secrets": Secrets({"tok": SECRET}),
        "env": {"HOME_DIR": "/home/ann"},
        "execution": {"id": "01E", "workflow_id": "w", "workspace": "/tmp/w"},
    }


def render(template: str, ctx: dict[str, Any] | None = None) -> Any:
    renderer = compile_value(template, WHERE)
    assert renderer is not None
    return renderer(context() if ctx is None else ctx)


_LEAKS = re.compile(r"0x[0-9a-f]{6,}|<(function|class|module|built-in|bound|generator)|Traceback")


def assert_clean(message: str) -> None:
    """One line, with no memory address, object repr, traceback or secret in it."""
    assert "\n" not in message
    assert not _LEAKS.search(message), message
    assert SECRET not in message


@pytest.mark.parametrize("template", REFUSED)
def test_hostile_templates_are_refused_with_a_template_error(template: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(template)

    message = str(caught.value)
    assert message.startswith(f"{WHERE}: "), message
    assert_clean(message)


@pytest.mark.parametrize(("template", "expected"), HARMLESS)
def test_hostile_looking_templates_that_are_harmless_render(template: str, expected: Any) -> None:
    assert render(template) == expected


def test_refusals_leave_the_context_as_it_was() -> None:
    ctx = context()
    before = copy.deepcopy(dict(ctx))

    for template in REFUSED[:60]:
        with pytest.raises(TemplateError):
            render(template, ctx)

    assert {k: v for k, v in ctx.items()} == before


def test_work_is_bounded_in_time_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "MAX_SECONDS", 0.2)
    # Few steps of work, each slow: the step budget alone would allow minutes.
    template = "{% set big = 'x' * 1000000 %}{% for i in range(100000) %}{% set y = big | upper %}{% endfor %}"  # noqa: E501

    with pytest.raises(TemplateError, match=r"the template ran for more than 0\.2 s"):
        render(template)


def test_refused_work_names_its_limit() -> None:
    with pytest.raises(TemplateError) as caught:
        render("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")

    assert str(caught.value) == (
        f"{WHERE}: not allowed in a template: the template does more than 1,000,000 steps "
        "of work (loop iterations and calls)"
    )


def test_a_refused_bomb_says_what_and_how_big() -> None:
    with pytest.raises(TemplateError) as caught:
        render("{{ 'x' * 10**10 }}")

    assert str(caught.value) == (
        f"{WHERE}: not allowed in a template: str * 10000000000 would be 10,000,000,000 "
        "characters or items long, over the limit of 10,485,760"
    )


def test_showing_code_is_refused_naming_what_it_is() -> None:
    with pytest.raises(TemplateError) as caught:
        render("{{ range }}")

    assert str(caught.value) == (
        f"{WHERE}: not allowed in a template: a template value must be data, not a function"
    )


# -- through the loader and the engine ----------------------------------------------------


def hostile_workflow(templates: list[str]) -> Workflow:
    """One independent step per template (built directly: the loader would refuse some),
    plus a step that reads another's output after all of them."""
    echo = ToolURI.parse("sire:local/echo")
    steps = [Step(id=f"t{i}", tool=echo, params={"v": t}) for i, t in enumerate(templates)]
    steps.append(Step(id="a", tool=echo, params={"text": "hi"}))
    steps.append(
        Step(
            id="b",
            tool=echo,
            params={"v": "{{ steps.a.output.text }}"},
            needs=("a",),
            depends=("a",),
        )
    )
    return Workflow(id="hostile", steps=tuple(steps), max_concurrency=4)


async def test_the_engine_fails_each_hostile_step_and_runs_the_rest() -> None:
    store = MemoryStore()
    mux = DispatcherMux({"sire": InProcessDispatcher(builtin_server())}, entry_points=False)
    wf = hostile_workflow(REFUSED)
    inputs = context()["inputs"]
    execution = Execution(new_execution_id(), wf.id, wf.digest, inputs=inputs)
    await store.create_execution(execution, wf.text)

    async with asyncio.timeout(60):
        execution = await Engine(store, mux, clock=FakeClock(), secrets={"tok": SECRET}).run(
            wf, execution
        )

    stored = await store.get_execution(execution.id)
    for i in range(len(REFUSED)):
        state = stored.step_states[f"t{i}"]
        assert state.status is StepStatus.FAILED, REFUSED[i]
        assert state.error is not None
        assert state.error.startswith(f"steps.t{i}.with.v: "), state.error
        assert_clean(state.error)
    assert stored.step_states["b"].output == {"v": "hi"}
    assert stored.status is ExecutionStatus.FAILED
    assert stored.inputs == inputs


@pytest.mark.parametrize("template", REFUSED)
def test_the_loader_refuses_or_the_run_fails_each_hostile_template(template: str) -> None:
    text = textwrap.dedent("""\
        id: hostile
        inputs:
          name: {}
          l: {}
        steps:
          - id: a
            tool: sire:local/echo
          - id: t
            tool: sire:local/echo
            with: {v: TEMPLATE}
    """).replace("TEMPLATE", json.dumps(template))  # a JSON string is a YAML string
    try:
        wf = parse_workflow(text, source="h.yaml")
    except DefinitionError as exc:  # an unknown name, such as `config` or `os`
        assert_clean(str(exc))
        return
    compiled = compile_value(wf.step("t").params, "steps.t.with")
    assert compiled is not None
    with pytest.raises(TemplateError):
        compiled(context())


@pytest.mark.parametrize(
    "template", ["{{ 'x' * 10**8 }}", "{{ 'x' | center(10**8) }}", "x{{ [0] * 10**7 }}"]
)
def test_loading_a_workflow_never_computes_its_templates(template: str) -> None:
    # Finding a template's names generates code, and Jinja's optimizer folds constants
    # there: these would be built, 80-100 MB each, while the workflow loads.
    import tracemalloc

    step = f"  - id: t\n    tool: sire:local/echo\n    with: {{v: {json.dumps(template)}}}\n"
    tracemalloc.start()
    try:
        wf = parse_workflow(f"id: lazy\nsteps:\n{step}", source="lazy.yaml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert wf.step("t").params == {"v": template}
    assert peak < 20 * 1024 * 1024


# -- text.template renders in the same sandbox ----------------------------------------------


@pytest.mark.parametrize("template", [t for t in REFUSED if "inputs" not in t])
async def test_text_template_refuses_the_corpus_too(template: str) -> None:
    dispatcher = InProcessDispatcher(builtin_server(ToolSettings()))
    ctx = DispatchContext(execution_id="e", step_id="s")
    data = {k: v for k, v in context().items() if k != "secrets"}

    with pytest.raises(ToolError) as caught:
        await dispatcher.dispatch(
            ctx,
            ToolURI.parse("sire:local/text.template"),
            {"template": template, "data": data},
        )

    assert str(caught.value).startswith("text.template: ")
    assert_clean(str(caught.value))
