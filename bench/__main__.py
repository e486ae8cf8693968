"""`make bench`: run every benchmark script in this folder (each writes its report
to bench/results/<name>.md), then collect them into bench/RESULTS.md.

    python -m bench              # the full runs (long: the 1000-Kustomization scenarios)
    python -m bench --quick      # a small version of each, reports in bench/results/quick/
    python -m bench --collect    # no run: RESULTS.md from the reports already there
    python -m bench --only kustomize,notifier
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from report import collect  # noqa: E402  (bench/ is a folder of scripts, not a package)

FULL_ARGS: dict[str, list[str]] = {
    "kustomize": ["--n", "100", "500", "1000", "--also-distinct"],
    "helm": ["--n", "100", "1000"],
}
"""Arguments beyond a script's defaults for the full run (the issue's scenarios)."""
QUICK_ARGS: dict[str, list[str]] = {
    "kustomize": ["--also-distinct"],
}


def run_scripts(results: Path, quick: bool, only: set[str]) -> list[str]:
    """Run each benchmark script; return the names of those that failed."""
    failed = []
    results.mkdir(parents=True, exist_ok=True)
    for script in sorted(HERE.glob("*_bench.py")):
        name = script.name.removesuffix("_bench.py")
        if only and name not in only:
            continue
        args = [*(QUICK_ARGS if quick else FULL_ARGS).get(name, [])]
        if quick:
            args.append("--quick")
        args += ["--out", str(results / f"{name}.md")]
        print(f"== {script.name} {' '.join(args)}", flush=True)
        start = time.monotonic()
        code = subprocess.run([sys.executable, str(script), *args], check=False).returncode
        print(f"== {script.name}: exit {code} after {time.monotonic() - start:.0f} s", flush=True)
        if code != 0:
            failed.append(script.name)
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small runs (make bench QUICK=1)")
    parser.add_argument("--collect", action="store_true", help="only write RESULTS.md")
    parser.add_argument("--only", default="", help="scripts to run, e.g. kustomize,notifier")
    parser.add_argument("--results", default="", help="where the reports are (and go)")
    parser.add_argument("--report", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    results = (
        Path(args.results) if args.results else HERE / "results" / ("quick" if args.quick else "")
    )
    failed: list[str] = []
    if not args.collect:
        only = {s.strip() for s in args.only.split(",") if s.strip()}
        failed = run_scripts(results, args.quick, only)
    cwd, shown = Path.cwd().resolve(), results.resolve()
    # The header names the folder as the reader typed it (relative when it can be).
    Path(args.report).write_text(
        collect(shown.relative_to(cwd) if shown.is_relative_to(cwd) else shown)
    )
    print(f"wrote {args.report}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
