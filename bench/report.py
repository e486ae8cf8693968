"""`bench/RESULTS.md`: one report of every benchmark, collected from the results
each script wrote (`bench/results/*.md`, or `bench/results/quick/` after
`make bench QUICK=1`): the machine, the date, and per metric the value, the
goal and the anchor (what it is compared with: Flux's figure, the raw floor
measured in the same run, the git CLI).

The scripts' reports are markdown tables; each metric names the file, the table
(by a column it has), the row (by its first cells) and the column it reads. When
a file holds several tables of the same shape (runs appended by hand), the last
one is the newest and wins.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Table = list[dict[str, str]]


@dataclass(frozen=True)
class Dated:
    """A table and the date its section names (the last date written above it)."""

    date: str
    rows: Table


DATE = re.compile(r"\b(20\d\d-\d\d-\d\d)\b")


def parse_tables(text: str) -> list[Dated]:
    """Every markdown table of a text, as rows keyed by the header cells, with its date."""
    tables: list[Dated] = []
    lines = text.splitlines()
    first = DATE.search(text)
    date = first.group(1) if first else "-"
    seen = False
    i = 0
    while i < len(lines):
        found = DATE.findall(lines[i]) if not lines[i].lstrip().startswith("|") else []
        if found and seen:
            date = found[-1]
        seen = seen or bool(found)
        line = lines[i].strip()
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if line.startswith("|") and re.fullmatch(r"\|[\s:|-]+\|", nxt):
            headers = _cells(line)
            rows: Table = []
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                cells = _cells(lines[i].strip())
                rows.append(dict(zip(headers, cells, strict=False)))
                i += 1
            tables.append(Dated(date, rows))
            continue
        i += 1
    return tables


def _cells(line: str) -> list[str]:
    return [c.strip().replace("**", "") for c in line.strip("|").split("|")]


@dataclass(frozen=True)
class Metric:
    """One line of the report."""

    area: str
    name: str
    file: str
    column: str | tuple[str, ...]
    """The table's column holding the value (prefixes of the header, tried in order)."""
    row: Callable[[dict[str, str]], bool]
    goal: str
    anchor: str | Callable[[dict[str, str]], str] = "-"
    scale: Callable[[dict[str, str]], str] | None = None
    """What the row says about the run's size (a quick run is smaller), shown with the value."""

    def find(self, tables: list[Dated]) -> tuple[str, dict[str, str]] | None:
        """The newest row of the newest table that has the column and the row, and its date."""
        for table in reversed(tables):
            for row in reversed(table.rows):
                if self._column(row) is not None and self.row(row):
                    return table.date, row
        return None

    def _column(self, row: dict[str, str]) -> str | None:
        prefixes = (self.column,) if isinstance(self.column, str) else self.column
        return next((k for p in prefixes for k in row if k.startswith(p)), None)

    def value(self, row: dict[str, str]) -> str:
        key = self._column(row)
        value = row[key] if key else "-"
        return f"{value} ({self.scale(row)})" if self.scale else value


def _first(prefix: str) -> Callable[[dict[str, str]], bool]:
    """Rows whose first cell starts with `prefix`."""
    return lambda row: next(iter(row.values()), "").startswith(prefix)


def _cell(column: str, prefix: str) -> Callable[[dict[str, str]], bool]:
    return lambda row: any(k.startswith(column) and v.startswith(prefix) for k, v in row.items())


def _kustomize(manifests: str) -> Callable[[dict[str, str]], bool]:
    """A kustomize row: the generated table (`manifests` column) or the hand-written one."""

    def match(row: dict[str, str]) -> bool:
        first = next(iter(row.values()), "")
        return row.get("manifests") == manifests or first.startswith(f"{manifests} manifests")

    return match


def _floor(row: dict[str, str]) -> str:
    """Kustomize's row against the raw apply of the same objects: the ratio and Flux's figure."""
    ready = _seconds(next((v for k, v in row.items() if k.startswith("all Ready")), ""))
    raw_key = next((k for k in row if k.startswith("raw SSA")), "")
    raw = _seconds(row.get(raw_key, ""))
    n = row.get("N") or re.sub(r"\D", "", next(iter(row)))
    ratio = f"{ready / raw:.1f}× the raw apply ({row.get(raw_key)})" if ready and raw else "-"
    return f"{ratio}; Flux: 1000 in 253 s (N = {n})"


def _tags(row: dict[str, str]) -> str:
    return f"{row.get('tags', '?')} tags"


def _offered(row: dict[str, str]) -> str:
    m = re.search(r"(\d+) objects due every second", next(iter(row.values()), ""))
    return f"offered load {m.group(1)} /s" if m else "offered load unknown"


def _seconds(text: str) -> float | None:
    m = re.search(r"([\d.]+)\s*s\b", text)
    return float(m.group(1)) if m else None


def _releases(row: dict[str, str]) -> str:
    workers = f", {row['helm workers']} Helm workers" if row.get("helm workers") else ""
    return f"N = {row.get('HelmReleases', '?')}{workers}"


METRICS: tuple[Metric, ...] = (
    Metric(
        "kustomize",
        "cold reconcile, shared manifests: all Ready",
        "kustomize.md",
        "all Ready",
        _kustomize("shared"),
        "≤ 5× raw apply; 1000 in ≤ 60 s",
        _floor,
    ),
    Metric(
        "kustomize",
        "cold reconcile, distinct manifests: all Ready",
        "kustomize.md",
        "all Ready",
        _kustomize("distinct"),
        "≤ 5× raw apply; 1000 in ≤ 60 s",
        _floor,
    ),
    Metric(
        "kustomize",
        "no-change resync of all of them",
        "kustomize.md",
        "resync all",
        _kustomize("shared"),
        "-",
        "one `interval` of every Kustomization",
    ),
    Metric(
        "kubelite",
        "server-side apply, 16 clients (kubernetes-asyncio)",
        "kubelite.md",
        ("this run", "quiet"),
        _first("server-side apply of small Deployments, kubernetes-asyncio, 16"),
        "-",
        "the floor kustomize is compared with",
    ),
    Metric(
        "notifier",
        "git push → applied through a Receiver, p50 / p99 / max ms",
        "notifier.md",
        "p50 / p99",
        _cell("from the push", "ConfigMap shows the new value"),
        "p50 ≤ 1000, p99 ≤ 3000",
        "Flux without a Receiver: next poll, `interval: 1m` (~30 s on average)",
    ),
    Metric(
        "notifier",
        "event → webhook received, p50 / p99 / max ms",
        "notifier.md",
        "published -> received",
        lambda row: True,
        "p50 ≤ 20",
        "-",
    ),
    Metric(
        "notifier",
        "sustained delivery to 3 Providers, paced: events/s",
        "notifier.md",
        "events/s overall",
        _cell("publishing", "paced"),
        "keeps up with the pace",
        "-",
    ),
    Metric(
        "all services",
        "idle CPU of the four services, 1000 Kustomizations from 50 GitRepositories",
        "idle.md",
        "result",
        _first("idle CPU"),
        "≤ 0.05 cores",
        "nats-server and kubelite listed apart in the report",
    ),
    Metric(
        "all services",
        "idle RSS of the four services together",
        "idle.md",
        "result",
        _first("idle RSS"),
        "≤ 300 MiB",
        "-",
    ),
    Metric(
        "source",
        "idle CPU (source only; issue goal is for all services)",
        "source_idle.md",
        "result",
        _first("idle CPU"),
        "≤ 0.05 cores (all services, 1000 Kustomizations)",
        "-",
    ),
    Metric(
        "source",
        "idle RSS (source only)",
        "source_idle.md",
        "result",
        _first("idle RSS"),
        "≤ 300 MiB (all services)",
        "-",
    ),
    Metric(
        "image",
        "tag scan, token auth, 1000 per page: requests",
        "image.md",
        "scan requests",
        lambda r: r.get("auth") == "token" and "1000" in r.get("registry paging", ""),
        "≤ 12 (10 000 tags)",
        "Docker Distribution's paging",
        scale=_tags,
    ),
    Metric(
        "image",
        "tag scan, token auth, 1000 per page: CPU ms",
        "image.md",
        "scan CPU",
        lambda r: r.get("auth") == "token" and "1000" in r.get("registry paging", ""),
        "≤ 100 (10 000 tags)",
        "-",
        scale=_tags,
    ),
    Metric(
        "source",
        "no-change poll, median ms",
        "source.md",
        "median",
        _cell("scenario", "a. no-change poll"),
        "≤ 5",
        "-",
    ),
    Metric(
        "source",
        "new commit: poll + fetch + checkout, median ms",
        "source.md",
        "median",
        _cell("scenario", "b. new commit"),
        "≤ 30",
        "-",
    ),
    Metric(
        "source",
        "cold shallow clone of 1000 files, median ms",
        "source.md",
        "median",
        _cell("scenario", "c. cold shallow clone, 1000 files (fluxbus)"),
        "≤ 1.5× git",
        lambda r: r.get("notes", "-") + " (same run)",
    ),
    Metric(
        "source",
        "peak RSS of fetch + archive (largest file)",
        "source_memory.md",
        "peak after archive",
        lambda row: True,
        "independent of the file size",
        "before the streaming fetch: 944 MiB for 300 MiB",
    ),
    Metric(
        "common",
        "KV put → watcher notified, p50",
        "common.md",
        "result",
        _first("KV put → watcher notified, p50"),
        "≤ 2 ms",
        "-",
    ),
    Metric(
        "common",
        "runtime steady state: no-op reconciles",
        "common.md",
        "result",
        _first("runtime, steady state"),
        "≥ 1000 /s",
        "-",
        scale=_offered,
    ),
    Metric(
        "helm",
        "N HelmReleases of one chart: all Ready",
        "helm.md",
        "all Ready",
        lambda row: True,
        "-",
        "Flux: 1000 HelmReleases in 4 m 39 s (279 s)",
        scale=_releases,
    ),
    Metric(
        "helm",
        "render of one release through a Helm worker, p50 ms",
        "helm.md",
        "render p50",
        lambda row: True,
        "-",
        "-",
    ),
    Metric(
        "helm",
        "peak RSS of one Helm worker process",
        "helm.md",
        "one Helm worker",
        lambda row: True,
        "≤ FLUXBUS_HELM_WORKER_MEMORY (768 MiB)",
        "-",
        scale=_releases,
    ),
    Metric(
        "faults",
        "standby takeover after a crash, median",
        "faults.md",
        "median",
        _first("standby takeover"),
        "≤ lease TTL + a few s",
        "Flux's leader election: lease 35 s",
    ),
)


QUICK_NOTE = (
    "**A quick run** (`make bench QUICK=1`): every script with `--quick`, so the sizes "
    "are small (100 Kustomizations, not 100/500/1000; 10 HelmReleases, not 100/1000; "
    "2 000 tags, not 10 000; fewer "
    "samples): read the ratios and latencies, not the totals, against the goals. "
    "The full runs' reports are in [results/](results).",
    "",
)


def collect(results: Path) -> str:
    """The report of the results in `results` (missing files or rows show as `-`)."""
    texts = {p.name: p.read_text() for p in sorted(results.glob("*.md"))}
    tables = {name: parse_tables(text) for name, text in texts.items()}
    lines = [
        "# fluxbus benchmarks",
        "",
        f"Collected {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from "
        f"`{results.as_posix()}` on {os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}; load average {_loadavg()}. Each value comes "
        "from the script's own report (linked), measured on the date shown; ratios are "
        "measured side by side in one run.",
        "",
        *(QUICK_NOTE if results.name == "quick" else ()),
        "| area | metric | value | goal | anchor | measured |",
        "|---|---|---|---|---|---|",
    ]
    for m in METRICS:
        found = m.find(tables.get(m.file, []))
        when, row = found if found else ("-", None)
        if row is not None and when == "-":
            when = _committed(results / m.file)
        value = m.value(row) if row else "not measured"
        anchor = (m.anchor(row) if row else "-") if callable(m.anchor) else m.anchor
        link = f"[{m.file}]({_relative(results / m.file)})"
        lines.append(f"| {m.area} | {m.name} | {value} | {m.goal} | {anchor} | {when}, {link} |")
    return "\n".join(lines) + "\n"


def _relative(path: Path) -> str:
    """`path` as a link from bench/RESULTS.md (absolute when outside bench/)."""
    here = Path(__file__).parent.resolve()
    full = path.resolve()
    return full.relative_to(here).as_posix() if full.is_relative_to(here) else full.as_posix()


def _committed(path: Path) -> str:
    """The date a report without one was last committed (`-` when not in Git)."""
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%cs", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "-"
    if out:
        return f"{out} (committed)"
    try:
        return time.strftime("%Y-%m-%d (file)", time.gmtime(path.stat().st_mtime))
    except OSError:
        return "-"


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"
