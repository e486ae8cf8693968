"""`make demo`: the whole pipeline once, on the embedded default, then exit.

1. start the stack (nats-server, kubelite, the source and kustomize services);
2. commit a copy of examples/gitops-repo to a temporary Git repository and
   serve it over Git smart HTTP (dulwich's server, on 127.0.0.1, through
   `fluxbus_git.testing`: the same servers the tests use);
3. apply its clusters/local/ (the GitRepository pointed at that server);
4. wait until the three Kustomizations are Ready;
5. print `fluxbus get kustomizations` and the applied Deployments.

Exits 0, or 1 naming the step that did not happen in time. Service logs are
kept in the state directory (printed at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fluxbus_cli.up import stack_up
from fluxbus_common.api import GitRepository, Kustomization, dump_object, load_documents
from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings
from fluxbus_git.testing import GitHTTPServer, make_repo

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gitops-repo"
READY_TIMEOUT = 180.0
"""Seconds the demo waits for everything to become Ready (a cold start takes ~10)."""


@contextmanager
def serve_example(directory: Path) -> Iterator[tuple[str, str]]:
    """Commit `EXAMPLE` to `main` of a new bare repository under `directory` and serve it
    over Git smart HTTP (dulwich's server, in-process; clone and push work); yield
    (commit id, clone URL)."""
    repo = make_repo(directory, "gitops-repo")
    try:
        sha = repo.commit_directory(
            EXAMPLE, branch="main", message="Add the example GitOps repository"
        )
        repo.set_default_branch("main")
        with GitHTTPServer(directory, backend="dulwich") as server:
            yield sha, server.url(repo)
    finally:
        repo.close()


def _ready(status: dict | None) -> tuple[bool, str]:
    for cond in (status or {}).get("conditions", []):
        if cond.get("type") == "Ready":
            return cond.get("status") == "True", cond.get("message", "")
    return False, "not reconciled yet"


async def _wait_ready(bus: Bus, keys: list[str], timeout: float) -> dict[str, str]:
    """Wait until every key is Ready; return {key: last message} of those that are not."""
    deadline = time.monotonic() + timeout
    pending = dict.fromkeys(keys, "not reconciled yet")
    announced: set[str] = set()
    while pending and time.monotonic() < deadline:
        for key in list(pending):
            entry = await bus.get_status(key)
            ok, message = _ready(None if entry is None else entry.value)
            if ok:
                del pending[key]
                if key not in announced:
                    announced.add(key)
                    print(
                        f"  ✔ {key.split('.', 1)[0]}/{key.split('.', 2)[2]}: {message}", flush=True
                    )
            else:
                pending[key] = message
        await asyncio.sleep(0.2)
    return pending


async def run_demo(state_dir: Path, timeout: float, keep_running: bool = False) -> int:
    with tempfile.TemporaryDirectory(prefix="fluxbus-demo-") as tmp:
        with serve_example(Path(tmp)) as (sha, url):
            print(f"▸ committed examples/gitops-repo as main@sha1:{sha}", flush=True)
            print(f"▸ serving it over Git smart HTTP at {url}", flush=True)
            print("▸ starting NATS, the embedded cluster, source and kustomize…", flush=True)
            async with stack_up(
                state_dir, services=("source", "kustomize"), quiet=True, log_dir=state_dir / "logs"
            ) as stack:
                bus = await Bus.connect(BusSettings(url=stack.nats_url), "demo")
                try:
                    docs: list = []
                    for path in sorted((EXAMPLE / "clusters" / "local").glob("*.yaml")):
                        docs += load_documents(path.read_text(), str(path))
                    keys = []
                    for obj in docs:
                        if isinstance(obj, GitRepository):
                            obj.spec.url = url
                        await bus.apply_object(obj.key, dump_object(obj, include_status=False))
                        keys.append(obj.key)
                    print(f"▸ applied clusters/local/ ({len(keys)} objects); waiting…", flush=True)
                    source_keys = [o.key for o in docs if isinstance(o, GitRepository)]
                    ks_keys = [o.key for o in docs if isinstance(o, Kustomization)]
                    for step, step_keys in (
                        ("GitRepository", source_keys),
                        ("Kustomizations", ks_keys),
                    ):
                        left = await _wait_ready(bus, step_keys, timeout)
                        if left:
                            print(f"✘ {step} not Ready within {timeout:.0f}s:", file=sys.stderr)
                            for key, message in left.items():
                                print(f"  {key}: {message}", file=sys.stderr)
                            print(f"  service logs: {state_dir / 'logs'}", file=sys.stderr)
                            return 1
                finally:
                    await bus.close()
                env = {**os.environ, "FLUXBUS_NATS_URL": stack.nats_url}
                bin_dir = Path(sys.executable).parent
                print("\n$ fluxbus get kustomizations", flush=True)
                await asyncio.to_thread(
                    subprocess.run, [str(bin_dir / "fluxbus"), "get", "kustomizations"], env=env
                )
                print("\n$ kubectl get deployments -A -o wide", flush=True)
                await asyncio.to_thread(
                    subprocess.run,
                    [
                        str(bin_dir / "kubectl"),
                        "--kubeconfig",
                        stack.kubeconfig,
                        "--cache-dir",
                        str(state_dir / "kube-cache"),
                        "get",
                        "deployments",
                        "-A",
                        "-o",
                        "wide",
                    ],
                    env=env,
                )
                print(
                    "\nThe three environments were rendered from one base with kustomize\n"
                    "overlays and server-side applied.",
                    flush=True,
                )
                if keep_running:
                    commands = play_commands(
                        stack.nats_url, stack.kubeconfig, url, bin_dir, Path(tmp) / "fleet"
                    )
                    await _play(commands)
    if not keep_running:
        print("Next: `make play` keeps this running to experiment with (README).", flush=True)
    return 0


CLONE_IDENTITY = ("user.name=fluxbus demo", "user.email=demo@fluxbus.invalid")
"""Set in the clone, so `git commit` works on a machine with no Git identity."""


def play_commands(
    nats_url: str, kubeconfig: str, git_url: str, bin_dir: Path, clone_dir: Path
) -> list[tuple[str, str]]:
    """(command, comment) pairs `make play` prints: every path absolute (they work from
    any directory), the clone outside the checkout (`clone_dir`)."""
    fleet = shlex.quote(str(clone_dir))
    overlay = shlex.quote(str(clone_dir / "apps" / "overlays" / "staging" / "kustomization.yaml"))
    identity = " ".join(f"-c {shlex.quote(c)}" for c in CLONE_IDENTITY)
    env = {
        "FLUXBUS_NATS_URL": nats_url,
        "KUBECONFIG": str(Path(kubeconfig).resolve()),
        "PATH": f"{bin_dir.resolve()}:$PATH",
    }
    exports = " ".join(f"{k}={v if k == 'PATH' else shlex.quote(v)}" for k, v in env.items())
    return [
        (f"export {exports}", ""),
        ("kubectl scale -n staging deployment/web --replicas 5", "drift the cluster…"),
        ("fluxbus reconcile kustomization apps-staging", "…and watch it corrected"),
        (f"git clone {identity} {git_url} {fleet}", "change Git…"),
        (f"sed -i 's/count: 2/count: 3/' {overlay}", ""),
        (
            f"git -C {fleet} commit -qam 'staging: 3 replicas' && git -C {fleet} push origin main",
            "",
        ),
        ("fluxbus reconcile kustomization apps-staging --with-source", "…and watch it roll out"),
        ("fluxbus events", ""),
    ]


async def _play(commands: list[tuple[str, str]]) -> None:
    """Keep the stack up until Ctrl-C, with what to type to experiment."""
    lines = []
    for command, comment in commands:
        lines += [f"  # {comment}"] if comment else []
        lines.append(f"  {command}")
    print("\nEverything stays up until Ctrl-C. In another terminal, from any directory:\n")
    print("\n".join(lines), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("stopping…", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fluxbus-demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--state-dir", default=".state/demo", help="state and logs (wiped at start)"
    )
    parser.add_argument("--timeout", type=float, default=READY_TIMEOUT)
    parser.add_argument(
        "--keep-running", action="store_true", help="keep everything up to experiment (Ctrl-C)"
    )
    args = parser.parse_args(argv)
    state = Path(args.state_dir).resolve()
    shutil.rmtree(state, ignore_errors=True)
    try:
        return asyncio.run(run_demo(state, args.timeout, args.keep_running))
    except RuntimeError as e:  # a component did not start
        print(f"✘ {e} (logs: {state / 'logs'})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
