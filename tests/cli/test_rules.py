"""The CLI's pure rules: ages, redaction of values in error messages, kubectl's
`--wait=false` spelling, and which Secret flags go together."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cli_helpers import MANIFESTS, Cli, heartbeat

from fluxbus_cli.__main__ import normalize_argv
from fluxbus_cli.errors import CliError
from fluxbus_cli.manifests import redact_values
from fluxbus_cli.render import age, parse_time
from fluxbus_cli.secrets import git_data, split_literal
from fluxbus_common.bus import Bus

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        pytest.param("2026-11-26T11:59:15Z", "45s", id="seconds"),
        pytest.param("2026-11-26T11:48:00Z", "12m", id="minutes"),
        pytest.param("2026-11-26T07:00:00Z", "5h", id="hours"),
        pytest.param("2026-11-23T12:00:00Z", "3d", id="days"),
        pytest.param("2026-11-26T11:59:59.123456789Z", "0s", id="nanoseconds"),
        pytest.param(None, "-", id="unknown"),
        pytest.param("yesterday", "-", id="unparseable"),
    ],
)
def test_age_reads_like_kubectl(timestamp: str | None, expected: str):
    assert age(timestamp, NOW) == expected


def test_timestamps_with_nanoseconds_and_offsets_parse():
    assert parse_time("2026-11-26T12:00:00.123456789+01:00") == datetime(
        2026, 11, 26, 11, 0, 0, 123456, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(
            "s.yaml: document 1: stringData.pin: input should be a valid string (got 987654)",
            "s.yaml: document 1: stringData.pin: input should be a valid string",
            id="secret-data",
        ),
        pytest.param(
            'a: document 2: data[".dockerconfigjson"]: input should be a valid string (got '
            '"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...)',
            'a: document 2: data[".dockerconfigjson"]: input should be a valid string',
            id="long-value",
        ),
        pytest.param(
            'a: document 1: spec.prune: input should be a valid boolean (got "yes please")',
            'a: document 1: spec.prune: input should be a valid boolean (got "yes please")',
            id="spec-values-stay",
        ),
        pytest.param(
            'a: document 1: spec.wait: bad (got 1); data.k: bad (got "x)y"); kind: bad (got 2)',
            "a: document 1: spec.wait: bad (got 1); data.k: bad; kind: bad (got 2)",
            id="several-clauses",
        ),
    ],
)
def test_error_messages_drop_the_values_of_data_fields(message: str, expected: str):
    assert redact_values(message) == expected


def test_kubectls_wait_false_spelling_is_accepted():
    assert normalize_argv(["delete", "ks", "x", "--wait=false"]) == [
        "delete",
        "ks",
        "x",
        "--no-wait",
    ]
    assert normalize_argv(["--wait=true", "--waiting=false"]) == ["--wait", "--waiting=false"]


def test_literals_keep_equals_signs_in_values_and_never_echo_them():
    assert split_literal("token=a=b") == ("token", b"a=b")
    with pytest.raises(CliError) as failed:
        split_literal("hunter2")
    assert "hunter2" not in str(failed.value)


@pytest.mark.parametrize(
    ("url", "kwargs", "complaint"),
    [
        pytest.param("https://h/r", {}, "give --username/--password", id="no-credentials"),
        pytest.param("https://h/r", {"username": "u"}, "go together", id="username-only"),
        pytest.param(
            "https://h/r",
            {"username": "u", "password": "p", "bearer_token": "t"},
            "not both",
            id="basic-and-bearer",
        ),
        pytest.param("https://h/r", {"private_key": b"k"}, "for ssh://", id="key-on-https"),
        pytest.param("ssh://git@h/r", {"private_key": b"k"}, "--known-hosts-file", id="no-hosts"),
        pytest.param("ftp://h/r", {}, 'scheme "ftp"', id="bad-scheme"),
    ],
)
def test_git_secret_flags_must_fit_the_url(url: str, kwargs: dict, complaint: str):
    with pytest.raises(CliError, match=complaint):
        git_data(url, **kwargs)


async def test_reapplying_after_a_reconcile_request_keeps_the_request(cli: Cli, bus: Bus):
    await cli("apply", "-f", str(MANIFESTS / "podinfo.yaml"))
    async with heartbeat(bus, "kustomization"):  # a live controller, which never answers
        await cli("reconcile", "ks", "podinfo", "--timeout", "1ms")
    again = await cli("apply", "-f", str(MANIFESTS / "podinfo.yaml"))
    assert again.stdout.splitlines()[1] == "kustomization/flux-system/podinfo unchanged"
