"""Bounded YAML: a billion laughs, a recursive alias, deep nesting and oversize text
are refused before anything expands them; ordinary anchors still load."""

from __future__ import annotations

import pytest
import yaml

from fluxbus_common import safeyaml
from fluxbus_common.api import InvalidObject, load_documents
from fluxbus_common.safeyaml import YamlLimitError, YamlLimits

LAUGHS = "\n".join(
    [
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata: {name: lol}",
        "data:",
        '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"  {n}: &{n} [{','.join([f'*{p}'] * 9)}]"
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)
"""The 9 × 9 "billion laughs": ~400 bytes expanding to 9⁹ (~3.9·10⁸) strings."""


@pytest.mark.parametrize(
    ("text", "limit", "line"),
    [
        pytest.param(LAUGHS, "alias expansion limit", 9, id="billion-laughs"),
        pytest.param("a: &a [1, *a]\n", "recursive alias", 1, id="recursive-alias"),
        pytest.param("[" * 300 + "]" * 300, "YAML depth limit", 1, id="deep-nesting"),
        pytest.param(
            "x: " + "y" * 2000 + "\n",
            "YAML size limit",
            0,
            id="oversize",
        ),
    ],
)
def test_over_a_limit_is_refused_naming_the_line_and_the_limit(
    text: str, limit: str, line: int
) -> None:
    limits = YamlLimits(max_bytes=1024) if limit == "YAML size limit" else YamlLimits()
    with pytest.raises(YamlLimitError) as info:
        safeyaml.load(text, limits=limits)
    assert info.value.limit == limit
    assert info.value.line == line
    assert f"({limit})" in str(info.value)


def test_a_refusal_is_a_yaml_error_so_callers_reporting_invalid_yaml_catch_it() -> None:
    with pytest.raises(yaml.YAMLError):
        safeyaml.load_all(LAUGHS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "base: &b {image: nginx, port: 80}\none: *b\ntwo: *b\n",
            {"base": {"image": "nginx", "port": 80}}
            | {k: {"image": "nginx", "port": 80} for k in ("one", "two")},
            id="a-reused-block",
        ),
        pytest.param("a: &x 1\nb: *x\n", {"a": 1, "b": 1}, id="a-scalar-anchor"),
    ],
)
def test_ordinary_anchors_and_aliases_load(text: str, expected: object) -> None:
    assert safeyaml.load(text) == expected


def test_a_large_file_may_reuse_anchors_up_to_its_own_size() -> None:
    block = "{" + ", ".join(f"k{i}: v" for i in range(10)) + "}"
    body = "".join(f"  b{i}: {block}\n" for i in range(100))  # ~2 000 nodes written
    aliases = "".join(f"  r{i}: *base\n" for i in range(50))  # ~1 000 nodes by aliases
    text = f"base: &base {block}\nplain:\n{body}refs:\n{aliases}"
    small = YamlLimits(max_alias_nodes=100)
    assert len(safeyaml.load(text, limits=small)["refs"]) == 50
    with pytest.raises(YamlLimitError, match="alias expansion limit"):
        safeyaml.load(text, limits=YamlLimits(max_alias_nodes=100, max_alias_ratio=0.1))


def test_anchors_are_per_document() -> None:
    text = "a: &x [1, 2]\n---\nb: &x [3]\nc: *x\n"
    assert safeyaml.load_all(text) == [{"a": [1, 2]}, {"b": [3], "c": [3]}]


def test_text_that_does_not_parse_is_a_plain_yaml_error() -> None:
    with pytest.raises(yaml.YAMLError) as info:
        safeyaml.load("a: [1, 2\n")
    assert not isinstance(info.value, YamlLimitError)


def test_fluxbus_apply_refuses_a_bomb_naming_the_file_and_the_limit() -> None:
    with pytest.raises(InvalidObject, match=r"^bomb\.yaml: document 1: .*alias expansion limit"):
        load_documents(LAUGHS, "bomb.yaml")
