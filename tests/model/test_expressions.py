"""Template strings: native single expressions, the `.secrets` synonym, what they read."""

from __future__ import annotations

import pytest

from sire.model.expressions import (
    CONTEXT_NAMES,
    ITEM_NAMES,
    References,
    TemplateSyntaxError,
    is_template,
    normalize,
    references,
    single_expression,
    strings,
)


@pytest.mark.parametrize(
    ("value", "expression"),
    [
        ("{{ x }}", "x"),
        ("{{x}}", "x"),
        ("{{ steps.a.output.items }}", "steps.a.output.items"),
        ("{{ inputs.n + 1 }}", "inputs.n + 1"),
        ("{{ {'a': 1} }}", "{'a': 1}"),
        ("{{\n  x\n}}", "x"),
    ],
)
def test_a_value_that_is_one_expression_keeps_its_native_type(value: str, expression: str) -> None:
    assert single_expression(value) == expression


@pytest.mark.parametrize(
    "value",
    [
        "a {{ x }}",
        "{{ x }} b",
        "{{ a }}{{ b }}",
        "{{ a }} and {{ b }}",
        "{% if x %}y{% endif %}",
        "plain text",
        "{{ x }",
        "",
    ],
)
def test_anything_else_renders_to_a_string(value: str) -> None:
    assert single_expression(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{{ .secrets.k }}", "{{ secrets.k }}"),
        ("{{.secrets.k}}", "{{secrets.k}}"),
        ("{{ x | default(.secrets.k) }}", "{{ x | default(secrets.k) }}"),
        ("{{ [.secrets.a, .secrets.b] }}", "{{ [secrets.a, secrets.b] }}"),
        ("{% if .secrets.k %}y{% endif %}", "{% if secrets.k %}y{% endif %}"),
        ("Bearer {{ .secrets.token }}!", "Bearer {{ secrets.token }}!"),
    ],
)
def test_normalize_rewrites_the_dot_secrets_synonym_inside_blocks(
    value: str, expected: str
) -> None:
    assert normalize(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "see .secrets.k",
        ".secrets.k {{ x }}",
        "{{ secrets.k }}",
        "{{ inputs.secrets }}",
        "{{ steps.a.output.secrets }}",
        "{{ x[0].secrets }}",
        "{{ f().secrets }}",
        "{{ .secretsauce }}",
        "no template at all",
    ],
)
def test_normalize_leaves_everything_else_alone(value: str) -> None:
    assert normalize(value) == value


def test_normalize_rewrites_only_the_blocks_of_a_mixed_string() -> None:
    value = "text .secrets.a {{ .secrets.b }} more .secrets.c"
    assert normalize(value) == "text .secrets.a {{ secrets.b }} more .secrets.c"


@pytest.mark.parametrize("value", ['{{ "see .secrets" }}', "{{ 'a .secrets.b' ~ x }}"])
def test_normalize_leaves_string_literals_alone(value: str) -> None:
    assert normalize(value) == value


def test_references_finds_the_steps_and_inputs_a_template_reads() -> None:
    refs = references(
        "{{ steps.a.output }} {{ steps['b'].output.x }} {{ inputs.name }} {{ inputs['n'] }}"
    )
    assert refs == References(
        steps=frozenset({"a", "b"}),
        inputs=frozenset({"name", "n"}),
        names=frozenset({"steps", "inputs"}),
    )


def test_references_sees_inside_filters_conditions_and_loops() -> None:
    refs = references(
        "{% for x in steps.a.output.items if x > inputs.min %}"
        "{{ x | default(steps.b.output) }}{% endfor %}"
        "{{ steps.c.output if secrets.on else env.HOME }}"
    )
    assert refs.steps == {"a", "b", "c"}
    assert refs.inputs == {"min"}
    assert refs.names == {"steps", "inputs", "secrets", "env"}


def test_references_of_a_normalized_secret_name_secrets() -> None:
    assert references(normalize("{{ .secrets.k }}")).names == {"secrets"}


def test_references_reports_every_top_level_name_but_not_locals() -> None:
    refs = references("{% set y = 1 %}{{ y }}{{ item }}{{ index }}{{ mystery }}")
    assert refs.names == {"item", "index", "mystery"}
    assert refs.steps == frozenset()


def test_jinja_globals_are_not_unknown_names() -> None:
    assert references("{{ range(3) | list }}").names == frozenset()


@pytest.mark.parametrize(
    "template",
    [
        "{{ steps[inputs.which].output }}",
        "{{ steps[0].output }}",
        "{{ steps | list }}",
        "{% set s = steps %}{{ s.a }}",
        "{{ inputs[x] }}",
    ],
)
def test_reading_steps_or_inputs_dynamically_is_a_syntax_error(template: str) -> None:
    with pytest.raises(TemplateSyntaxError, match=r"literal name|steps\.<id>"):
        references(template)


@pytest.mark.parametrize("template", ["{{ 1 + }}", "{{ x", "{% if x %}", "{{ a b }}"])
def test_a_template_that_does_not_parse_is_a_syntax_error(template: str) -> None:
    with pytest.raises(TemplateSyntaxError, match=r"^template syntax error: "):
        references(template)


def test_template_syntax_error_is_a_value_error() -> None:
    assert issubclass(TemplateSyntaxError, ValueError)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("{{ x }}", True), ("{% if x %}{% endif %}", True), ("{ x }", False), ("plain", False)],
)
def test_is_template_looks_for_template_syntax(value: str, expected: bool) -> None:
    assert is_template(value) is expected


def test_strings_yields_every_template_with_its_path() -> None:
    value = {
        "a": "{{ x }}",
        "b": ["plain", "{{ y }}", {"c": "{% if z %}{% endif %}"}],
        "d": 3,
        "e": None,
    }
    assert list(strings(value, "steps[0].with")) == [
        ("steps[0].with.a", "{{ x }}"),
        ("steps[0].with.b[1]", "{{ y }}"),
        ("steps[0].with.b[2].c", "{% if z %}{% endif %}"),
    ]
    assert list(strings({"k": "{{ v }}"}, "")) == [("k", "{{ v }}")]
    assert list(strings("{{ v }}", "outputs.x")) == [("outputs.x", "{{ v }}")]


def test_the_context_names_are_those_of_the_design() -> None:
    assert {"inputs", "steps", "secrets", "env", "execution"} == CONTEXT_NAMES
    assert {"item", "index"} == ITEM_NAMES
