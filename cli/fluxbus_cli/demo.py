"""`make demo`: the whole GitOps story on real components, observed step by step.

Starts the demo's world (`demo_world`: a Git smart-HTTP server holding a copy
of examples/gitops-repo, a local registry with podinfo 1.3.0, a Slack
stand-in, `fluxbus up`'s stack with the five services), plays the seven steps
of `demo_story` (each printed when observed), then prints `fluxbus get all`
and writes the timeline of the run (`fluxbus timeline -o demo-timeline.png`).

Exits 0, or 1 naming the step that did not happen within its deadline.
`--keep-running` (`make play`) keeps everything up afterwards. Service logs
are kept in the state directory (printed on failure).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fluxbus_cli.demo_story import STEP_TIMEOUT, StepFailed, Story
from fluxbus_cli.demo_world import ROOT, World, demo_world
from fluxbus_git.testing import GitHTTPServer, make_repo

EXAMPLE = ROOT / "examples" / "gitops-repo"
TIMELINE = "demo-timeline.png"
"""Written in the checkout (the repository root)."""


async def _fluxbus(world: World, *args: str) -> tuple[int, str, str]:
    """Run the fluxbus CLI against the demo's stack; output goes to ours, stderr is returned."""
    env = {**os.environ, "FLUXBUS_NATS_URL": world.stack.nats_url}
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "fluxbus"),
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return int(proc.returncode or 0), out.decode(errors="replace"), err.decode(errors="replace")


async def write_timeline(world: World, path: Path) -> bool:
    """Write the run's timeline with `fluxbus timeline -o path`; print what happened.
    Returns False when it failed."""
    print(f"\n$ fluxbus timeline -o {path.name}", flush=True)
    code, out, err = await _fluxbus(world, "timeline", "-o", str(path))
    if code == 0:
        print(out, end="", flush=True)
        print(f"timeline written to {path}", flush=True)
        return True
    print(f"✘ fluxbus timeline failed (exit {code}):\n{out}{err}", file=sys.stderr, flush=True)
    return False


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


async def run_demo(
    state_dir: Path,
    step_timeout: float,
    keep_running: bool = False,
    timeline: Path | None = ROOT / TIMELINE,
) -> int:
    print("▸ starting Git, the registry, the Slack stand-in, NATS, the cluster, 5 services…")
    async with demo_world(state_dir) as world:
        print(f"▸ Git: {world.git.url(world.repo)} (examples/gitops-repo at main)", flush=True)
        print(f"▸ registry: {world.image}:1.3.0; Slack stand-in: {world.sink.url}", flush=True)
        story = Story(world, step_timeout=step_timeout)
        try:
            await story.play()
        except StepFailed as e:
            print(f"\n✘ {e}", file=sys.stderr)
            print(f"  service logs: {state_dir / 'logs'}", file=sys.stderr, flush=True)
            return 1
        print("\n$ fluxbus get all -A", flush=True)
        _code, out, err = await _fluxbus(world, "get", "all", "-A")
        print(out + err, end="", flush=True)
        if timeline is not None and not await write_timeline(world, timeline):
            return 1
        if keep_running:
            clone = Path(tempfile.mkdtemp(prefix="fluxbus-play-")) / "fleet"
            await _play(
                play_commands(
                    world.stack.nats_url,
                    world.stack.kubeconfig,
                    world.git.url(world.repo),
                    Path(sys.executable).parent,
                    clone,
                )
            )
    if not keep_running:
        print("\nNext: `make play` keeps this running to experiment with (README).", flush=True)
    return 0


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
    parser.add_argument(
        "--timeout", type=float, default=STEP_TIMEOUT, help="seconds each step may take"
    )
    parser.add_argument(
        "--timeline",
        default=str(ROOT / TIMELINE),
        help="where the timeline PNG goes ('' for none)",
    )
    parser.add_argument(
        "--keep-running", action="store_true", help="keep everything up to experiment (Ctrl-C)"
    )
    args = parser.parse_args(argv)
    state = Path(args.state_dir).resolve()
    shutil.rmtree(state, ignore_errors=True)
    timeline = Path(args.timeline).resolve() if args.timeline else None
    try:
        return asyncio.run(run_demo(state, args.timeout, args.keep_running, timeline))
    except RuntimeError as e:  # a component did not start
        print(f"✘ {e} (logs: {state / 'logs'})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
