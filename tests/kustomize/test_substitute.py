"""Flux's post-build substitution: every envsubst operator, escapes, strict mode,
variable precedence and the opt-out annotation."""

from __future__ import annotations

import pytest

from fluxbus_kustomize.logic.manifests import load, split_documents
from fluxbus_kustomize.logic.substitute import (
    SubstitutionError,
    envsubst,
    merge_variables,
    substitute_object,
    substitute_objects,
)

PATH = "/home/bozo/ideas/thoughts.for.today"


@pytest.mark.parametrize(
    ("variables", "text", "expected"),
    [
        pytest.param({"v": "abc"}, "${v}", "abc", id="plain"),
        pytest.param({"v": "abc"}, "x-${v}-y", "x-abc-y", id="inside-text"),
        pytest.param({"v": "abcdEFGH28ij"}, "${#v}", "12", id="length"),
        pytest.param({"v": "abcd"}, "${v^}", "Abcd", id="upper-first"),
        pytest.param({"v": "abcd"}, "${v^^}", "ABCD", id="upper"),
        pytest.param({"v": "ABCD"}, "${v,}", "aBCD", id="lower-first"),
        pytest.param({"v": "ABCD"}, "${v,,}", "abcd", id="lower"),
        pytest.param({"p": PATH}, "${p:11}", "ideas/thoughts.for.today", id="substring-from"),
        pytest.param({"p": PATH}, "${p:11:5}", "ideas", id="substring-length"),
        pytest.param({"p": "abcdef"}, "${p:-3}", "abcdef", id="colon-dash-is-a-default"),
        pytest.param({"p": "abcdef"}, "${p:1:-1}", "bcde", id="substring-negative-length"),
        pytest.param({"p": "abc"}, "${p:9}", "", id="substring-past-the-end"),
        pytest.param({"f": "bash.string.txt"}, "${f#*.}", "string.txt", id="trim-shortest-prefix"),
        pytest.param({"f": "bash.string.txt"}, "${f##*.}", "txt", id="trim-longest-prefix"),
        pytest.param({"f": "bash.string.txt"}, "${f%.*}", "bash.string", id="trim-shortest-suffix"),
        pytest.param({"f": "bash.string.txt"}, "${f%%.*}", "bash", id="trim-longest-suffix"),
        pytest.param({"f": "path/to/file"}, "${f##*/}", "file", id="star-matches-slashes"),
        pytest.param({"s": "abcABCabc"}, "${s/abc/x}", "xABCabc", id="replace-first"),
        pytest.param({"s": "abcABCabc"}, "${s//abc/x}", "xABCx", id="replace-all"),
        pytest.param({"s": "abcABCabc"}, "${s/#abc/x}", "xABCabc", id="replace-prefix"),
        pytest.param({"s": "abcABCabc"}, "${s/%abc/x}", "abcABCx", id="replace-suffix"),
        pytest.param({"s": "value"}, "${s/#/pre-}", "pre-value", id="prepend"),
        pytest.param({"s": "foo.bar"}, "${s/./}", "foobar", id="replace-with-nothing"),
        pytest.param({"s": "foo/bar/baz"}, r"${s//\//-}", "foo-bar-baz", id="escaped-slash"),
        pytest.param({}, "${v:=dflt}", "dflt", id="colon-equals-default"),
        pytest.param({}, "${v=dflt}", "dflt", id="equals-default"),
        pytest.param({}, "${v:-dflt}", "dflt", id="colon-dash-default"),
        pytest.param({}, "${v-dflt}", "dflt", id="dash-default"),
        pytest.param({"v": ""}, "${v:=dflt}", "dflt", id="empty-takes-the-default"),
        pytest.param({"v": "set"}, "${v:=dflt}", "set", id="set-ignores-the-default"),
        pytest.param({"d": "foo"}, "${v:=pre-${d}-suf}", "pre-foo-suf", id="nested-default"),
        pytest.param({"d": "foo"}, "${v=${d^^}}", "FOO", id="nested-operator"),
        pytest.param({"v": "abc"}, "$${v}", "${v}", id="escaped-expression"),
        pytest.param({"v": "abc"}, "$$v and $$$${v}", "$v and $${v}", id="escaped-dollars"),
        pytest.param({"v": "abc"}, "$v ${v}", "$v abc", id="bare-dollar-var-left-alone"),
        pytest.param({"v": "abc"}, "costs $5", "costs $5", id="lone-dollar"),
        pytest.param(
            {"v": "abc"},
            "some text ${v}$${var$${v}$v${v}",
            "some text abc${var${v}$vabc",
            id="flux-escape-table",
        ),
    ],
)
def test_envsubst_expands_like_flux(variables: dict[str, str], text: str, expected: str) -> None:
    assert envsubst(text, variables) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("${missing}", id="plain"),
        pytest.param("${#missing}", id="length"),
        pytest.param("${missing^^}", id="upper"),
        pytest.param("${missing:0:2}", id="substring"),
        pytest.param("${missing/a/b}", id="replace"),
        pytest.param("${missing%%.*}", id="trim"),
        pytest.param("${v:=${missing}}", id="inside-a-default"),
    ],
)
def test_strict_mode_fails_on_an_unset_variable_naming_it(text: str) -> None:
    with pytest.raises(SubstitutionError, match=r'variable not set \(strict mode\): "missing"'):
        envsubst(text, {}, strict=True)


def test_non_strict_mode_substitutes_an_empty_string() -> None:
    assert envsubst("a${missing}b", {}, strict=False) == "ab"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("${v", id="unclosed"),
        pytest.param("${}", id="no-name"),
        pytest.param("${v!}", id="unknown-operator"),
        pytest.param("${v/abc}", id="replace-without-delimiter"),
    ],
)
def test_a_malformed_expression_is_an_error(text: str) -> None:
    with pytest.raises(SubstitutionError):
        envsubst(text, {"v": "x"}, strict=False)


def test_inline_substitute_wins_over_substitute_from_and_later_sources_win() -> None:
    merged = merge_variables(
        [{"a": "cm1", "b": "cm1"}, {"b": "secret2", "c": "secret2"}],
        {"c": "inline"},
    )
    assert merged == {"a": "cm1", "b": "secret2", "c": "inline"}


def test_newlines_are_stripped_from_values() -> None:
    assert merge_variables([{"token": "abc\n"}], {"x": "a\nb"}) == {"token": "abc", "x": "ab"}


def configmap(**data: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "apps"},
        "data": data,
    }


def test_substitution_reparses_the_yaml_so_numbers_become_numbers() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"replicas": "${n}"},
    }
    assert substitute_object(obj, {"n": "3"})["spec"]["replicas"] == 3


def test_a_quote_variable_keeps_a_number_a_string() -> None:
    obj = configmap(id="${quote}${id}${quote}")
    assert substitute_object(obj, {"quote": '"', "id": "123"})["data"]["id"] == "123"


def test_multi_line_values_survive_substitution() -> None:
    obj = configmap(script="#!/bin/sh\necho ${greeting}\necho $HOME\n")
    out = substitute_object(obj, {"greeting": "hello"})
    assert out["data"]["script"] == "#!/bin/sh\necho hello\necho $HOME\n"


def test_an_object_annotated_substitute_disabled_is_left_alone() -> None:
    obj = configmap(v="${missing}")
    obj["metadata"]["annotations"] = {"kustomize.toolkit.fluxcd.io/substitute": "disabled"}
    assert substitute_objects([obj], {"x": "1"}) == [obj]


def test_an_object_labelled_substitute_disabled_is_left_alone() -> None:
    obj = configmap(v="${missing}")
    obj["metadata"]["labels"] = {"kustomize.toolkit.fluxcd.io/substitute": "disabled"}
    assert substitute_objects([obj], {"x": "1"}) == [obj]


def test_strict_failure_names_the_object_and_the_variable() -> None:
    with pytest.raises(SubstitutionError, match=r'ConfigMap/apps/cm: .*"region"'):
        substitute_objects([configmap(r="${region}")], {"x": "1"})


def test_nothing_is_substituted_without_any_variable() -> None:
    obj = configmap(v="${missing}", e="$${kept}")
    assert substitute_objects([obj], {}) == [obj]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("1abc", id="leading-digit"),
        pytest.param("a-b", id="dash"),
        pytest.param("a.b", id="dot"),
    ],
)
def test_an_invalid_variable_name_is_rejected(name: str) -> None:
    with pytest.raises(SubstitutionError, match=f"'{name}' var name is invalid"):
        substitute_objects([configmap()], {name: "x"})


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param("v: 2024-01-01", "2024-01-01", id="date-stays-a-string"),
        pytest.param("v: 1:30", "1:30", id="sexagesimal-stays-a-string"),
        pytest.param("v: =", "=", id="equals-sign"),
        pytest.param("v: 1e3", 1000.0, id="exponent-float"),
        pytest.param("v: 0x1f", 31, id="hex-int"),
        pytest.param("v: 42", 42, id="int"),
        pytest.param("v: 1.5", 1.5, id="float"),
        pytest.param("v: true", True, id="bool"),
    ],
)
def test_manifests_load_scalars_like_the_kubernetes_tooling(text: str, value: object) -> None:
    assert load(text) == {"v": value}


def test_kustomize_output_splits_into_documents() -> None:
    out = "a: 1\n---\nb: |\n  x\n  ---\n  y\n---\n\n"
    assert split_documents(out) == ["a: 1\n", "\nb: |\n  x\n  ---\n  y\n"]
    assert load(split_documents(out)[1]) == {"b": "x\n---\ny\n"}
