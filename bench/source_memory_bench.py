"""Benchmark of issue 16 ("Memory follows the repository"): peak RSS of one fetch.

For each size, builds a repository holding one file of random bytes (with
the real `git` CLI, packed by `git gc`), serves it with the smart-HTTP test
server (`git http-backend`), and runs, in a fresh child process, what the
source service does for a GitRepository: `GitClient.fetch` (fetch + checkout)
then `build_tarball` (the artifact). The child reports its resident set
before the fetch and its peak (VmHWM) after each step; the server runs in
this parent process, so its buffers are not counted.

    .venv/bin/python bench/source_memory_bench.py [--sizes 100,300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1024 * 1024


def status_mib(field: str) -> float:
    """A `/proc/self/status` memory field (VmRSS, VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(url: str, workdir: Path) -> None:
    """Fetch + check out + archive `url` once; print the memory measures as JSON."""
    from fluxbus_git.client import GitClient
    from fluxbus_git.logic.refs import Checkout, RefKind
    from fluxbus_source.artifact import build_tarball

    base = status_mib("VmRSS")
    client = GitClient(timeout=600)
    t0 = time.monotonic()
    result = asyncio.run(client.fetch(url, Checkout(RefKind.BRANCH, "main"), workdir / "tree"))
    fetched = time.monotonic() - t0
    after_fetch = status_mib("VmHWM")
    t1 = time.monotonic()
    artifact = build_tarball(workdir / "tree", workdir / "artifact.tar.gz")
    archived = time.monotonic() - t1
    print(
        json.dumps(
            {
                "base": base,
                "fetch_peak": after_fetch,
                "peak": status_mib("VmHWM"),
                "fetch_s": fetched,
                "archive_s": archived,
                "pack": result.bytes_received / MIB,
                "artifact": artifact.size / MIB,
            }
        )
    )


def make_big_repo(root: Path, size_mib: int) -> Path:
    """A bare repo `<root>/big<size>.git` whose `main` holds one random file of `size_mib`."""
    work = root / f"work{size_mib}"
    work.mkdir(parents=True)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }

    def git(*args: str, cwd: Path = work) -> None:
        subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    with (work / "big.bin").open("wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(MIB))
    (work / "deploy.yaml").write_text("kind: ConfigMap\nmetadata: {name: big}\n")
    git("add", ".")
    git("commit", "-q", "-m", f"{size_mib} MiB of random bytes")
    bare = root / "git" / f"big{size_mib}.git"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=root)
    git("gc", "-q", cwd=bare)
    subprocess.run(["rm", "-rf", str(work)], check=True)
    return bare


def measure(size_mib: int, workdir: Path) -> dict[str, float]:
    from fluxbus_git.testing import GitHTTPServer

    make_big_repo(workdir, size_mib)
    server = GitHTTPServer(workdir / "git").start()
    try:
        out = workdir / f"run{size_mib}"
        out.mkdir()
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                f"http://127.0.0.1:{server.port}/big{size_mib}.git",
                str(out),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        result: dict[str, float] = json.loads(proc.stdout.splitlines()[-1])
        return result
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(workdir / "git"), str(workdir / f"run{size_mib}")])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,300", help="file sizes in MiB, comma-separated")
    parser.add_argument("--label", default="after", help="column label (before/after a change)")
    parser.add_argument("--out", default="bench/results/source_memory.md")
    parser.add_argument("--child", nargs=2, metavar=("URL", "WORKDIR"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--quick", action="store_true", help="a small run for `make bench QUICK=1`: --sizes 20"
    )
    args = parser.parse_args()
    if args.quick:
        args.sizes = "20"
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            r = measure(size, Path(tmp))
        rows.append(
            f"| {size} MiB | {r['pack']:.0f} MiB | {r['base']:.0f} MiB | {r['fetch_peak']:.0f} MiB "
            f"| {r['peak']:.0f} MiB | {r['fetch_s']:.1f} s | {r['archive_s']:.1f} s |"
        )
        print(rows[-1], flush=True)
    report = f"""# Source service: peak memory of one fetch + checkout + archive ({args.label})

Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()};
a repository with one file of random bytes (and a small manifest), served by
`git http-backend` on the same machine; a fresh child process runs
`GitClient.fetch` (branch `main`, depth 1) then `build_tarball`. Run:
`.venv/bin/python bench/source_memory_bench.py --sizes {args.sizes} --label {args.label}`
({time.strftime("%Y-%m-%d")}).

| file | pack received | RSS before fetch | peak after fetch + checkout | peak after archive | fetch time | archive time |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}
"""
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    print(report)


if __name__ == "__main__":
    main()
