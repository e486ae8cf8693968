"""Go duration strings parse and print exactly as Go's time package does."""

from __future__ import annotations

import pytest

from fluxbus_common.duration import (
    format_duration,
    format_duration_ns,
    parse_duration,
    parse_duration_ns,
)

MS = 1_000_000
S = 1_000 * MS
M = 60 * S
H = 60 * M
MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        pytest.param("0", 0, id="bare-zero"),
        pytest.param("-0", 0, id="negative-zero"),
        pytest.param("+0", 0, id="positive-zero"),
        pytest.param("5s", 5 * S, id="seconds"),
        pytest.param("1478s", 1478 * S, id="many-seconds"),
        pytest.param("-5s", -5 * S, id="negative"),
        pytest.param("+5s", 5 * S, id="explicit-plus"),
        pytest.param("5.6s", 5 * S + 600 * MS, id="fraction"),
        pytest.param("5.s", 5 * S, id="trailing-dot"),
        pytest.param(".5s", 500 * MS, id="leading-dot"),
        pytest.param("1.004s", 1 * S + 4 * MS, id="small-fraction"),
        pytest.param("100.00100s", 100 * S + 1 * MS, id="padded-fraction"),
        pytest.param("10ns", 10, id="nanoseconds"),
        pytest.param("11us", 11_000, id="microseconds-ascii"),
        pytest.param("12µs", 12_000, id="microseconds-micro-sign"),
        pytest.param("12μs", 12_000, id="microseconds-greek-mu"),
        pytest.param("500ms", 500 * MS, id="milliseconds"),
        pytest.param("300ms", 300 * MS, id="milliseconds-flux-style"),
        pytest.param("15m", 15 * M, id="minutes"),
        pytest.param("1h", H, id="hour"),
        pytest.param("16h", 16 * H, id="hours"),
        pytest.param("1.5h", 90 * M, id="fractional-hours"),
        pytest.param("1m30s", 90 * S, id="minutes-and-seconds"),
        pytest.param("2h45m", 2 * H + 45 * M, id="hours-and-minutes"),
        pytest.param("5m0s", 5 * M, id="flux-printed-form"),
        pytest.param("10.5s4m", 4 * M + 10 * S + 500 * MS, id="units-in-any-order"),
        pytest.param("-2m3.4s", -(2 * M + 3 * S + 400 * MS), id="negative-compound"),
        pytest.param("1h2m3s4ms5us6ns", H + 2 * M + 3 * S + 4 * MS + 5_000 + 6, id="all-units"),
        pytest.param("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS, id="long-compound"),
        pytest.param("9223372036854775807ns", MAX, id="largest"),
        pytest.param("9223372036854775.807us", MAX, id="largest-fractional"),
        pytest.param("-9223372036854775808ns", -MAX - 1, id="smallest"),
    ],
)
def test_go_durations_parse_to_the_same_nanoseconds_as_go(text: str, nanoseconds: int) -> None:
    assert parse_duration_ns(text) == nanoseconds
    assert parse_duration(text) == nanoseconds / 1e9


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("3", id="number-without-unit"),
        pytest.param("-", id="sign-only"),
        pytest.param("s", id="unit-only"),
        pytest.param(".", id="dot-only"),
        pytest.param("-.", id="sign-dot"),
        pytest.param(".s", id="dot-unit"),
        pytest.param("+.s", id="sign-dot-unit"),
        pytest.param("1d", id="days-are-not-a-go-unit"),
        pytest.param("5 minutes", id="english"),
        pytest.param("5m ", id="trailing-space"),
        pytest.param("1h-5m", id="sign-inside"),
        pytest.param("9223372036854775808ns", id="overflow"),
        pytest.param("-9223372036854775809ns", id="negative-overflow"),
    ],
)
def test_anything_go_rejects_is_an_invalid_duration(text: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_duration(text)
    assert str(err.value) == f'invalid duration "{text}"'


def test_the_error_quotes_the_offending_text() -> None:
    with pytest.raises(ValueError, match=r'^invalid duration "5 minutes"$'):
        parse_duration("5 minutes")


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        pytest.param(0, "0s", id="zero"),
        pytest.param(1, "1ns", id="nanosecond"),
        pytest.param(1_100, "1.1µs", id="microseconds"),
        pytest.param(2_200_000, "2.2ms", id="milliseconds"),
        pytest.param(3_300_000_000, "3.3s", id="seconds"),
        pytest.param(4 * M + 5 * S, "4m5s", id="minutes"),
        pytest.param(4 * M + 5001 * MS, "4m5.001s", id="minutes-fraction"),
        pytest.param(5 * H + 6 * M + 7001 * MS, "5h6m7.001s", id="hours"),
        pytest.param(8 * M + 1, "8m0.000000001s", id="nanosecond-precision"),
        pytest.param(H, "1h0m0s", id="whole-hour"),
        pytest.param(MAX, "2562047h47m16.854775807s", id="largest"),
        pytest.param(-MAX - 1, "-2562047h47m16.854775808s", id="smallest"),
    ],
)
def test_durations_print_like_go_duration_string(nanoseconds: int, text: str) -> None:
    assert format_duration_ns(nanoseconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(90, "1m30s", id="ninety-seconds"),
        pytest.param(0.3, "300ms", id="fraction-of-a-second"),
        pytest.param(0.5, "500ms", id="half-second"),
        pytest.param(60, "1m0s", id="minute"),
        pytest.param(9900, "2h45m0s", id="hours-and-minutes"),
        pytest.param(-1.5, "-1.5s", id="negative"),
    ],
)
def test_seconds_format_as_go_duration_strings(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["1m30s", "2h45m0s", "300ms", "1.5µs", "5h6m7.001s", "0s"])
def test_printing_a_parsed_canonical_duration_gives_it_back(text: str) -> None:
    assert format_duration_ns(parse_duration_ns(text)) == text
