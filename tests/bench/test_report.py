"""`bench/report.py`: RESULTS.md is collected from the scripts' own reports, one line
per metric with its value, goal and anchor."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from report import METRICS, collect, parse_tables  # noqa: E402


def test_every_metric_is_found_in_the_committed_results():
    report = collect(BENCH / "results")
    rows = [line for line in report.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == len(METRICS) + 1  # the header
    assert "not measured" not in report


@pytest.mark.parametrize(
    ("text", "dates"),
    [
        pytest.param(
            "Run (2026-01-02).\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
            ["2026-01-02"],
            id="the-run-line-dates-the-table",
        ),
        pytest.param(
            "# x (2026-01-02)\n| a |\n|---|\n| 1 |\n\n## later (2026-02-03)\n| a |\n|---|\n| 2 |\n",
            ["2026-01-02", "2026-02-03"],
            id="each-section-dates-its-own-table",
        ),
    ],
)
def test_tables_are_read_with_the_date_of_their_section(text, dates):
    assert [t.date for t in parse_tables(text)] == dates


def test_a_missing_report_is_named_not_measured(tmp_path: Path):
    (tmp_path / "common.md").write_text("| benchmark | result |\n|---|---|\n| other | 1 |\n")
    assert collect(tmp_path).count("not measured") == len(METRICS)
