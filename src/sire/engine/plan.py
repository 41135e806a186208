"""The plan of a run, computed without running: order, layers, and each step's parameters.

`build_plan(workflow, inputs, env)` renders every template it can with the engine's own
templating (`sire.engine.templating`) and leaves the rest `Pending`, naming what it
waits for: a step output (`steps.greet.output.text`), a secret (never rendered, so a
plan never shows one), the execution id, an input not given, or a `for_each` item.
Pure: no tool is called, nothing is stored. `sire run --dry-run` prints the result.

A template is pending when rendering it *reads* anything unknown, found by rendering
with placeholders that record every read. A template that reads nothing unknown (say,
`{{ inputs.x or steps.a.output.y }}` when `x` is set) renders as a run would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from sire.engine.templating import compile_value
from sire.errors import DefinitionError, TemplateError
from sire.model import expressions
from sire.model.graph import layers, topological_order
from sire.model.workflow import Step, Workflow


class Pending(NamedTuple):
    """A value known only when the workflow runs.

    Attributes:
        template: the value as written (None for a step without `with:`, whose
            parameters are its parents' outputs).
        references: what it waits for, e.g. `("steps.greet.output.text",)`.
    """

    template: Any
    references: tuple[str, ...]


class Failed(NamedTuple):
    """A template that fails with these inputs (the run would fail the step): `reason`."""

    template: Any
    reason: str


class StepPlan(NamedTuple):
    """One step as it would run: its layer, parameters, and what is known of `if`/`for_each`.

    Attributes:
        position: the step's index in the file (`steps[position]`).
        layer: 0 for steps that wait for nothing; steps in one layer may run together.
        params: the tool's arguments, with `Pending` where a value is not known yet
            (`Failed` where it fails); a `Pending` as a whole for a step without
            `with:` that has parents.
        when: None without `if:`; its truth when known; else `Pending`.
        for_each: None without `for_each:`; the items when known; else `Pending`.
        items: the parameters of each item, when the items are known.
        skipped: why the step will be skipped, when that is known before running.
    """

    id: str
    position: int
    tool: str
    layer: int
    depends: tuple[str, ...]
    params: Any
    when: Any = None
    for_each: Any = None
    items: tuple[Any, ...] = ()
    skipped: str | None = None


class Plan(NamedTuple):
    """What a run of a workflow with these inputs would do, as far as it is known.

    Attributes:
        inputs: the inputs as given and defaulted (a missing one is `Pending`).
        order: one order the steps may run in (each after all it depends on).
        layers: the steps by layer, each layer's steps independent of each other.
        outputs: the workflow's `outputs:`, rendered where known; None without one.
        problems: templates that fail with these inputs, located in the file.
    """

    workflow_id: str
    inputs: Mapping[str, Any]
    order: tuple[str, ...]
    layers: tuple[tuple[str, ...], ...]
    steps: tuple[StepPlan, ...]
    outputs: Any
    problems: tuple[DefinitionError, ...]

    def step(self, step_id: str) -> StepPlan:
        """The plan of step `step_id`.

        Raises:
            KeyError: there is no such step.
        """
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)


def build_plan(
    workflow: Workflow,
    inputs: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    *,
    workspace: str | None = None,
    outputs: Mapping[str, Any] | None = None,
    execution_id: str | None = None,
) -> Plan:
    """Plan a run of `workflow` with `inputs` (resolved; a declared input left out is pending).

    `env` is the template `env` allow-list (rendered: it is the user's to show);
    `workspace`, when given, is what `execution.workspace` renders to. For an execution
    under way, `outputs` holds the outputs of its completed steps by step id (their
    dependents' parameters render as they did or will) and `execution_id` its id.
    """
    planner = _Planner(workflow, inputs, env or {}, workspace)
    for step_id, output in (outputs or {}).items():
        planner.steps[step_id] = {"output": output, "status": "completed"}
    if execution_id is not None:
        planner.context["execution"]["id"] = execution_id
    return planner.plan()


# --- rendering with placeholders ------------------------------------------------------


class _Reads:
    """The unknown values one rendering read (reset before each rendering)."""

    def __init__(self) -> None:
        self.paths: list[str] = []


class _PendingUse(Exception):
    """A template used an unknown value (printed, compared, iterated): it is pending."""


#: Attributes Jinja and Python probe on any value; reading them is not a dependency.
_PROBES = frozenset({"unsafe_callable", "alters_data", "jinja_pass_arg"})


class _Unknown:
    """A placeholder for a value known only when running; records every read of it.

    Reading an attribute or item gives a deeper placeholder (`steps.a.output.x`). As
    text it is `<steps.a.output.x>`, so the rest of a text template is still read and
    every reference found; any other use (a number, a truth value, a list) stops the
    rendering. Either way the result is discarded: the value is pending.
    """

    __slots__ = ("_path", "_reads")

    def __init__(self, path: str, reads: _Reads) -> None:
        self._path = path
        self._reads = reads

    def __getattr__(self, name: str) -> _Unknown:
        if name.startswith("_") or name in _PROBES:
            raise AttributeError(name)
        return self._child(f"{self._path}.{name}")

    def __getitem__(self, key: Any) -> _Unknown:
        if isinstance(key, str) and key.isidentifier():
            return self._child(f"{self._path}.{key}")
        return self._child(f"{self._path}[{key!r}]")

    def _child(self, path: str) -> _Unknown:
        self._reads.paths.append(path)
        return _Unknown(path, self._reads)

    def _use(self, *args: Any, **kwargs: Any) -> Any:
        self._reads.paths.append(self._path)
        raise _PendingUse(self._path)

    def __str__(self) -> str:
        self._reads.paths.append(self._path)
        return f"<{self._path}>"

    def __format__(self, spec: str) -> str:
        return str(self)

    def __repr__(self) -> str:  # for debugging: not a read
        return f"<pending {self._path}>"

    __bool__ = __iter__ = __len__ = __contains__ = __call__ = _use
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = _use
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _use
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _use
    __pow__ = __neg__ = __pos__ = __int__ = __float__ = __index__ = _use


def _placeholders(value: Any) -> list[str]:
    """The paths of the placeholders inside a rendered value (a native `{{ x }}`)."""
    if isinstance(value, _Unknown):
        return [value._path]
    if isinstance(value, dict):
        return [p for item in value.values() for p in _placeholders(item)]
    if isinstance(value, list | tuple):
        return [p for item in value for p in _placeholders(item)]
    return []


def _deepest(paths: list[str]) -> tuple[str, ...]:
    """`paths` without those another one extends (`steps.a.output` under `...output.x`)."""
    unique = list(dict.fromkeys(paths))
    return tuple(
        p for p in unique if not any(q != p and q.startswith((f"{p}.", f"{p}[")) for q in unique)
    )


class _Planner:
    def __init__(
        self,
        workflow: Workflow,
        inputs: Mapping[str, Any],
        env: Mapping[str, str],
        workspace: str | None,
    ) -> None:
        self.workflow = workflow
        self.reads = _Reads()
        unknown = self.unknown
        self.inputs = {
            name: inputs[name] if name in inputs else unknown(f"inputs.{name}")
            for name in workflow.inputs
        }
        # Steps are looked up by key in `steps`; a step known to be skipped reads as
        # `{"output": None}` (for `needs_any` dependents), any other is a placeholder.
        self.steps: dict[str, Any] = {s.id: unknown(f"steps.{s.id}") for s in workflow.steps}
        self.context: dict[str, Any] = {
            "inputs": self.inputs,
            "steps": self.steps,
            "secrets": unknown("secrets"),  # never rendered: a plan must not show one
            "env": dict(env),
            "execution": {
                "id": unknown("execution.id"),
                "workflow_id": workflow.id,
                "workspace": workspace if workspace is not None else unknown("execution.workspace"),
            },
        }
        self.problems: list[DefinitionError] = []
        self.quiet = False  # a step that will be skipped cannot fail: its failures are shown only

    def unknown(self, path: str) -> _Unknown:
        return _Unknown(path, self.reads)

    def plan(self) -> Plan:
        workflow = self.workflow
        deps = {step.id: list(step.depends) for step in workflow.steps}
        order = topological_order(deps)
        grouped = layers(deps)
        layer_of = {step_id: n for n, layer in enumerate(grouped) for step_id in layer}
        index_of = {step.id: i for i, step in enumerate(workflow.steps)}
        planned: dict[str, StepPlan] = {}
        for step_id in order:
            step = workflow.steps[index_of[step_id]]
            planned[step_id] = self.plan_step(step, index_of[step_id], layer_of[step_id], planned)
        outputs = None
        if workflow.outputs is not None:
            outputs = self.render(dict(workflow.outputs), "outputs", "outputs", {})
        return Plan(
            workflow_id=workflow.id,
            inputs={
                name: Pending(None, (f"inputs.{name}",)) if isinstance(v, _Unknown) else v
                for name, v in self.inputs.items()
            },
            order=tuple(order),
            layers=tuple(tuple(layer) for layer in grouped),
            steps=tuple(planned[step.id] for step in workflow.steps),
            outputs=outputs,
            problems=tuple(self.problems),
        )

    def plan_step(
        self, step: Step, index: int, layer: int, planned: Mapping[str, StepPlan]
    ) -> StepPlan:
        here = f"steps[{index}]"
        where = f"steps.{step.id}"
        base = StepPlan(step.id, index, str(step.tool), layer, step.depends, None)
        skipped = self.skip_reason(step, planned)
        when = None
        if skipped is None and step.when is not None:
            when = self.render(step.when, f"{here}.if", f"{where}.if", {})
            if not isinstance(when, Pending | Failed):
                when = bool(when)
                if not when:
                    skipped = "'if' was false"
        if skipped is not None:
            self.steps[step.id] = {"output": None, "status": "skipped"}
            self.quiet = True
            try:
                params = self.params(step, here, where, {})
            finally:
                self.quiet = False
            return base._replace(params=params, when=when, skipped=skipped)
        if step.for_each is None:
            return base._replace(params=self.params(step, here, where, {}), when=when)
        items = self.render(step.for_each, f"{here}.for_each", f"{where}.for_each", {})
        if isinstance(items, Failed):
            return base._replace(params=None, when=when, for_each=items)
        if isinstance(items, Pending):
            scope = {"item": self.unknown("item"), "index": self.unknown("index")}
            return base._replace(
                params=self.params(step, here, where, scope), when=when, for_each=items
            )
        if not isinstance(items, list | tuple):
            self.problem(
                f"for_each must give a list, got {type(items).__name__}", f"{here}.for_each"
            )
            return base._replace(params=None, when=when, for_each=items)
        each = tuple(
            self.params(step, here, where, {"item": item, "index": n})
            for n, item in enumerate(items)
        )
        return base._replace(
            params=each[0] if each else {}, when=when, for_each=list(items), items=each
        )

    def skip_reason(self, step: Step, planned: Mapping[str, StepPlan]) -> str | None:
        """Why `step` will be skipped, when its parents' fate already says so."""
        skipped = [p for p in step.depends if planned[p].skipped is not None]
        if not skipped:
            return None
        if not step.needs_any:
            return f"parent '{skipped[0]}' skipped"
        if len(skipped) == len(step.depends):
            return "no parent completed"
        return None

    def params(self, step: Step, here: str, where: str, scope: Mapping[str, Any]) -> Any:
        if step.params is not None:
            return self.render(dict(step.params), f"{here}.with", f"{where}.with", scope)
        known = [self.steps[p] for p in step.depends]
        if step.depends and any(isinstance(k, _Unknown) for k in known):
            return Pending(None, tuple(f"steps.{p}.output" for p in step.depends))
        if step.depends:  # the inputs overlaid by the parents' outputs, as the engine does
            overlay = {name: v for name, v in self.inputs.items() if not isinstance(v, _Unknown)}
            for parent in known:
                if isinstance(parent["output"], dict):
                    overlay.update(parent["output"])
            return overlay
        return {
            name: Pending(None, (f"inputs.{name}",)) if isinstance(v, _Unknown) else v
            for name, v in self.inputs.items()
        }

    def render(self, value: Any, path: str, where: str, scope: Mapping[str, Any]) -> Any:
        """`value` with each template rendered, or `Pending`; a failure is a problem."""
        if isinstance(value, dict):
            return {
                k: self.render(v, f"{path}.{k}", f"{where}.{k}", scope) for k, v in value.items()
            }
        if isinstance(value, list):
            return [
                self.render(v, f"{path}[{i}]", f"{where}[{i}]", scope) for i, v in enumerate(value)
            ]
        if not isinstance(value, str) or not expressions.is_template(value):
            return value
        context = {**self.context, **scope} if scope else self.context
        self.reads.paths = []
        failure: str | None = None
        result: Any = None
        try:
            renderer = compile_value(value, where)
            result = renderer(context) if renderer is not None else value
        except TemplateError as exc:
            failure = str(exc)
        except _PendingUse:  # the fast path reads without Jinja's wrapping
            pass
        reads = self.reads.paths + _placeholders(result)
        if reads:
            return Pending(value, _deepest(reads))
        if failure is not None:
            reason = failure.removeprefix(f"{where}: ")
            if not self.quiet:
                self.problem(reason, path)
            return Failed(value, reason)
        return result

    def problem(self, reason: str, path: str) -> None:
        workflow = self.workflow
        self.problems.append(
            DefinitionError(
                f"template fails with these inputs: {reason}",
                file=workflow.source,
                line=workflow.line(path),
                path=path,
            )
        )
