"""The registry API's text formats: auth challenges, token answers, Link headers, exclusion lists."""

from __future__ import annotations

import datetime as dt

import pytest

from fluxbus_common.api.image import DEFAULT_EXCLUSION_LIST
from fluxbus_image.logic.challenge import (
    Challenge,
    next_link,
    parse_challenges,
    pick_challenge,
    token_from_response,
)
from fluxbus_image.logic.errors import ExclusionListError
from fluxbus_image.logic.exclusion import exclude_tags

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(
            'Basic realm="registry"', [Challenge("basic", {"realm": "registry"})], id="basic"
        ),
        pytest.param(
            'Bearer realm="https://auth.io/token",service="registry.io",scope="repository:a/b:pull,push"',
            [
                Challenge(
                    "bearer",
                    {
                        "realm": "https://auth.io/token",
                        "service": "registry.io",
                        "scope": "repository:a/b:pull,push",
                    },
                )
            ],
            id="bearer-comma-in-quotes",
        ),
        pytest.param(
            'BEARER Realm="r", Service=svc',
            [Challenge("bearer", {"realm": "r", "service": "svc"})],
            id="case-and-tokens",
        ),
        pytest.param(
            'Bearer realm="a \\"quoted\\" realm"',
            [Challenge("bearer", {"realm": 'a "quoted" realm'})],
            id="escaped-quotes",
        ),
        pytest.param(
            'Negotiate, Basic realm="b", Bearer realm="t",service="s"',
            [
                Challenge("negotiate"),
                Challenge("basic", {"realm": "b"}),
                Challenge("bearer", {"realm": "t", "service": "s"}),
            ],
            id="several",
        ),
        pytest.param("", [], id="empty"),
    ],
)
def test_www_authenticate_challenges_are_parsed(header: str, expected: list[Challenge]) -> None:
    assert parse_challenges(header) == expected


def test_the_first_challenge_a_client_can_answer_is_picked() -> None:
    picked = pick_challenge(parse_challenges('Negotiate, Bearer realm="t"'))
    assert picked == Challenge("bearer", {"realm": "t"})


@pytest.mark.parametrize(
    ("document", "token", "lifetime"),
    [
        pytest.param({"token": "tok-t", "expires_in": 300}, "tok-t", 300, id="token"),
        pytest.param({"access_token": "tok-a"}, "tok-a", 60, id="access-token-default-60s"),
        pytest.param(
            {"token": "tok-t", "access_token": "tok-a", "expires_in": 120},
            "tok-t",
            120,
            id="token-wins",
        ),
        pytest.param(
            {"token": "tok-t", "expires_in": 300, "issued_at": "2026-01-01T11:58:00.123456789Z"},
            "tok-t",
            180,
            id="issued-two-minutes-ago",
        ),
        pytest.param(
            {"token": "tok-t", "expires_in": 300, "issued_at": "2026-01-01T12:10:00Z"},
            "tok-t",
            300,
            id="server-clock-ahead",
        ),
        pytest.param(
            {"token": "tok-t", "expires_in": 60, "issued_at": "2026-01-01T10:00:00Z"},
            "tok-t",
            0,
            id="already-expired",
        ),
    ],
)
def test_token_answers_give_the_token_and_its_remaining_lifetime(
    document: dict[str, object], token: str, lifetime: float
) -> None:
    grant = token_from_response(document, NOW)
    assert grant.token == token
    assert grant.lifetime == pytest.approx(lifetime, abs=0.5)
    assert token not in repr(grant)


def test_a_token_answer_without_a_token_is_refused() -> None:
    with pytest.raises(ValueError, match="neither 'token' nor 'access_token'"):
        token_from_response({"expires_in": 60}, NOW)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(
            '</v2/a/tags/list?n=2&last=b>; rel="next"',
            "https://r.io:5000/v2/a/tags/list?n=2&last=b",
            id="relative",
        ),
        pytest.param(
            "<https://r.io:5000/v2/a/tags/list?last=b>; rel=next",
            "https://r.io:5000/v2/a/tags/list?last=b",
            id="absolute-unquoted",
        ),
        pytest.param(
            '</prev>; rel="prev", </next>; rel="next"', "https://r.io:5000/next", id="several"
        ),
        pytest.param('</x>; rel="prev"', None, id="no-next"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_link_headers_give_the_next_page(header: str | None, expected: str | None) -> None:
    assert next_link(header, "https://r.io:5000/v2/a/tags/list?n=2") == expected


@pytest.mark.parametrize(
    ("patterns", "kept"),
    [
        pytest.param(None, ["1.0.0", "latest", "sha256-abc.att"], id="default-drops-sig"),
        pytest.param(
            list(DEFAULT_EXCLUSION_LIST),
            ["1.0.0", "latest", "sha256-abc.att"],
            id="explicit-default",
        ),
        pytest.param(["^.*\\.sig$", "\\.att$", "latest"], ["1.0.0"], id="several"),
        pytest.param(["0\\.0"], ["latest", "sha256-abc.sig", "sha256-abc.att"], id="unanchored"),
    ],
)
def test_exclusion_lists_drop_matching_tags(patterns: list[str] | None, kept: list[str]) -> None:
    tags = ["1.0.0", "latest", "sha256-abc.sig", "sha256-abc.att"]
    assert exclude_tags(tags, patterns) == kept


def test_an_invalid_exclusion_pattern_is_named() -> None:
    with pytest.raises(ExclusionListError, match=r"invalid regular expression '\(unclosed'"):
        exclude_tags(["a"], ["ok", "(unclosed"])
