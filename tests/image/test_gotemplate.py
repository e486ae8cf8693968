"""Go text/template semantics, case by case as Go's text/template renders them (trim markers,
comments, pipelines, variables and their scope, range over maps in key order, else branches,
break/continue, built-ins, printing) and Go-like error positions."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fluxbus_image.logic.gotemplate import TemplateError, render


@dataclass
class Inner:
    __go_type__ = "main.Inner"
    Name: str


@dataclass
class Data:
    __go_type__ = "main.Data"
    Items: list[object]
    Map: dict[str, object]
    Inner: Inner
    Empty: str = ""
    Count: int = 3

    def Greet(self, who: str) -> str:
        return "hi " + who


DATA = Data(["a", "b", "c"], {"z": 1, "a": 2, "m": 3}, Inner("in"))


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("a  \n\t{{- .Count -}} \n b", "a3b", id="trim-markers-eat-all-whitespace"),
        pytest.param("a {{-3}} b", "a -3 b", id="minus-without-space-is-a-number"),
        pytest.param("x {{/* c */}} {{- /* d */ -}} y", "x y", id="comments"),
        pytest.param(
            "{{ .Inner.Name }} {{ .Map.m }} {{ .Map.nope }}", "in 3 <no value>", id="fields"
        ),
        pytest.param('{{ index .Map "nope" }}|{{ index .Items 1 }}', "0|b", id="index-zero-value"),
        pytest.param(
            "{{ range $k, $v := .Map }}{{ $k }}={{ $v }} {{ end }}",
            "a=2 m=3 z=1 ",
            id="map-key-order",
        ),
        pytest.param("{{ range .Map }}{{ . }}{{ end }}", "231", id="range-map-values"),
        pytest.param(
            "{{ range $e := .Items }}{{ $e }}{{ end }}", "abc", id="range-one-variable-is-element"
        ),
        pytest.param("{{ range $i, $e := .Items }}{{ $i }}{{ end }}", "012", id="range-index"),
        pytest.param(
            "{{ range list }}x{{ else }}none{{ end }}",
            "none",
            id="range-else-empty-list",
        ),
        pytest.param(
            "{{ range .Map.nope }}x{{ else }}none{{ end }}", "none", id="range-missing-else"
        ),
        pytest.param("{{ range 3 }}{{ . }}{{ end }}", "012", id="range-int"),
        pytest.param(
            '{{ range .Items }}{{ if eq . "b" }}{{ continue }}{{ end }}{{ if eq . "c" }}{{ break }}{{ end }}{{ . }}{{ end }}',
            "a",
            id="break-continue",
        ),
        pytest.param(
            "{{ if .Empty }}a{{ else if .Count }}b{{ else }}c{{ end }}", "b", id="else-if"
        ),
        pytest.param(
            "{{ with .Empty }}a{{ else with .Inner }}{{ .Name }}{{ end }}", "in", id="else-with"
        ),
        pytest.param(
            "{{ with $x := .Inner.Name }}{{ $x }}{{ . }}{{ end }}", "inin", id="with-variable"
        ),
        pytest.param(
            "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ $y := 5 }}{{ end }}{{ $x }}",
            "2",
            id="assign-outer-variable",
        ),
        pytest.param("{{ range .Items }}{{ $.Count }}{{ end }}", "333", id="dollar-is-data"),
        pytest.param(
            '{{ and 1 0 2 }} {{ and 1 2 }} {{ or 0 "" }} {{ or 0 "x" 1 }}',
            "0 2  x",
            id="and-or-values",
        ),
        pytest.param("{{ or 1 .Nope.Deeper }}", "1", id="or-short-circuits"),
        pytest.param("{{ and 0 (index .Items 99) }}", "0", id="and-short-circuits"),
        pytest.param("{{ not .Empty }} {{ not .Inner }}", "true false", id="not-struct-is-true"),
        pytest.param(
            '{{ len .Items }} {{ len .Map }} {{ len "héllo" }}', "3 3 6", id="len-counts-bytes"
        ),
        pytest.param(
            '{{ printf "%s|%d|%v|%q|%x|%5s|%-3d|%03d|%.2f|%t" "a" 42 .Items "q" "hi" "r" 7 5 3.14159 true }}',
            """a|42|[a b c]|"q"|6869|    r|7  |005|3.14|true""",
            id="printf-verbs",
        ),
        pytest.param(
            '{{ printf "%d" "x" }} {{ printf "%s" }} {{ printf "a" 1 }}',
            "%!d(string=x) %!s(MISSING) a%!(EXTRA int=1)",
            id="printf-bad-args",
        ),
        pytest.param(
            '{{ print 1 2 "x" 3 }}|{{ println 1 "a" }}', "1 2x3|1 a\n", id="print-println-spacing"
        ),
        pytest.param(
            "{{ .Items }} {{ .Map }} {{ .Inner }} {{ true }} {{ 1.5 }} {{ 1e6 }} {{ 2.0 }}",
            "[a b c] map[a:2 m:3 z:1] {in} true 1.5 1e+06 2",
            id="printing-like-fmt",
        ),
        pytest.param('{{ .Inner.Name | printf "<%s>" }}', "<in>", id="pipeline-last-argument"),
        pytest.param('{{ .Greet "you" }} {{ "me" | .Greet }}', "hi you hi me", id="method-call"),
        pytest.param('{{ slice "abcdef" 1 3 }} {{ slice .Items 1 }}', "bc [b c]", id="slice"),
        pytest.param(
            '{{ eq 1 2 1 }} {{ ne "a" "b" }} {{ lt 1 2 }} {{ ge 2 2 }} {{ gt "b" "a" }} {{ le 3 2 }}',
            "true true true true true false",
            id="comparisons",
        ),
        pytest.param(
            '{{ html "<a href=\'x\'>&" }} {{ urlquery "a b&c" }} {{ js "a\'b<" }}',
            "&lt;a href=&#39;x&#39;&gt;&amp; a+b%26c a\\'b\\u003C",
            id="escapers",
        ),
        pytest.param(
            '{{ define "t" }}[{{ . }}]{{ end }}{{ template "t" .Count }}',
            "[3]",
            id="define-template",
        ),
        pytest.param(
            "{{ `raw\\n` }} {{ \"esc\\tx\" }} {{ 'a' }}", "raw\\n esc\tx 97", id="literals"
        ),
        pytest.param(
            '{{ "ABC" | lower }} {{ trunc 3 "abcdef" }} {{ contains "b" "abc" }} {{ default "d" .Empty }}',
            "abc abc true d",
            id="sprig-functions",
        ),
    ],
)
def test_go_semantics(template: str, expected: str) -> None:
    assert render(template, DATA) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        pytest.param(
            "line one\n  {{ .Count ",
            "template: messageTemplate:2: unclosed action",
            id="unclosed-action",
        ),
        pytest.param(
            "a\n{{ nope .Count }}",
            'template: messageTemplate:2: function "nope" not defined',
            id="unknown-function",
        ),
        pytest.param(
            "a\nb {{ .Inner.Nope }}",
            'template: messageTemplate:2:11: executing "messageTemplate" at <.Inner.Nope>: '
            "can't evaluate field Nope in type main.Inner",
            id="bad-field-position-is-the-last-field",
        ),
        pytest.param(
            "{{ .nope }}",
            'template: messageTemplate:1:3: executing "messageTemplate" at <.nope>: '
            "can't evaluate field nope in type main.Data",
            id="lowercase-field",
        ),
        pytest.param(
            "{{ index .Items 5 }}",
            'template: messageTemplate:1:3: executing "messageTemplate" at <index .Items 5>: '
            "error calling index: index out of range: 5",
            id="index-out-of-range",
        ),
        pytest.param(
            "{{ if .Count }}x", "template: messageTemplate:1: unexpected EOF", id="missing-end"
        ),
        pytest.param(
            "{{ end }}", "template: messageTemplate:1: unexpected {{end}}", id="stray-end"
        ),
        pytest.param(
            "{{ $y }}",
            'template: messageTemplate:1: undefined variable "$y"',
            id="undefined-variable",
        ),
        pytest.param(
            "{{ if true }}{{ $x := 1 }}{{ end }}{{ $x }}",
            'template: messageTemplate:1: undefined variable "$x"',
            id="variable-scope-ends-at-end",
        ),
        pytest.param(
            "{{ break }}",
            "template: messageTemplate:1: {{break}} outside {{range}}",
            id="break-outside-range",
        ),
        pytest.param(
            "{{ }}", "template: messageTemplate:1: missing value for command", id="empty-action"
        ),
        pytest.param(
            "{{/* x */ .Count }}",
            "template: messageTemplate:1: comment ends before closing delimiter",
            id="comment",
        ),
        pytest.param(
            "{{ lt true false }}",
            'template: messageTemplate:1:3: executing "messageTemplate" at <lt true false>: '
            "error calling lt: invalid type for comparison",
            id="bad-comparison",
        ),
        pytest.param(
            '{{ eq 1 "a" }}',
            'template: messageTemplate:1:3: executing "messageTemplate" at <eq 1 "a">: '
            "error calling eq: incompatible types for comparison",
            id="incompatible-comparison",
        ),
    ],
)
def test_errors_read_as_go(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(template, DATA)
    assert str(caught.value) == message


def test_the_template_name_is_in_the_messages() -> None:
    with pytest.raises(TemplateError, match=r"^template: commit message:1: unexpected EOF$"):
        render("{{ range .Items }}", DATA, name="commit message")
