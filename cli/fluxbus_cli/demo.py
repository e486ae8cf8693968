"""`make demo`: the whole pipeline once, on the embedded default, then exit.

1. start the stack (nats-server, kubelite, the source and kustomize services);
2. commit a copy of examples/gitops-repo to a temporary Git repository and
   serve it over Git smart HTTP (dulwich's server, on 127.0.0.1);
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
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo
from dulwich.server import BackendRepo, DictBackend
from dulwich.web import make_wsgi_chain

from fluxbus_cli.up import stack_up
from fluxbus_common.api import GitRepository, Kustomization, dump_object, load_documents
from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gitops-repo"
READY_TIMEOUT = 180.0
"""Seconds the demo waits for everything to become Ready (a cold start takes ~10)."""


def commit_tree(repo_path: Path, source: Path, branch: str = "main") -> str:
    """Commit every file under `source` to `branch` of a new bare repository."""
    repo = Repo.init_bare(str(repo_path), mkdir=True)
    store = repo.object_store

    def tree_of(directory: Path) -> bytes:
        tree = Tree()
        for entry in sorted(directory.iterdir()):
            if entry.is_dir():
                tree.add(entry.name.encode(), 0o040000, ObjectID(tree_of(entry)))
            elif entry.is_file():
                blob = Blob.from_string(entry.read_bytes())
                store.add_object(blob)
                tree.add(entry.name.encode(), 0o100644, blob.id)
        store.add_object(tree)
        return tree.id

    commit = Commit()
    commit.tree = tree_of(source)
    commit.author = commit.committer = b"fluxbus demo <demo@fluxbus.invalid>"
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"Add the example GitOps repository\n"
    store.add_object(commit)
    head = Ref(f"refs/heads/{branch}".encode())
    repo.refs[head] = commit.id
    repo.refs.set_symbolic_ref(Ref(b"HEAD"), head)
    repo.close()
    return commit.id.decode()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # no access log
        pass


@contextmanager
def serve_git(repo_path: Path, name: str) -> Iterator[str]:
    """Serve one bare repository over Git smart HTTP; yield its clone URL."""
    repos: dict[str, BackendRepo] = {f"/{name}": Repo(str(repo_path))}
    backend = DictBackend(repos)
    server: WSGIServer = make_server(
        "127.0.0.1", 0, make_wsgi_chain(backend), handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="git-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/{name}"
    finally:
        server.shutdown()
        server.server_close()


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
        repo_path = Path(tmp) / "gitops-repo.git"
        sha = commit_tree(repo_path, EXAMPLE)
        print(f"▸ committed examples/gitops-repo as main@sha1:{sha}", flush=True)
        with serve_git(repo_path, "gitops-repo.git") as url:
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
                    await _play(stack.nats_url, stack.kubeconfig, url)
    if not keep_running:
        print("Next: `make play` keeps this running to experiment with (README).", flush=True)
    return 0


async def _play(nats_url: str, kubeconfig: str, git_url: str) -> None:
    """Keep the stack up until Ctrl-C, with what to type to experiment."""
    print(
        f"""
Everything stays up until Ctrl-C. In another terminal:

  export FLUXBUS_NATS_URL={nats_url} KUBECONFIG={kubeconfig}
  PATH=$PWD/.venv/bin:$PATH
  kubectl scale -n staging deployment/web --replicas 5     # drift the cluster…
  fluxbus reconcile kustomization apps-staging             # …and watch it corrected
  git clone {git_url} fleet && cd fleet                     # change Git…
  sed -i 's/count: 2/count: 3/' apps/overlays/staging/kustomization.yaml
  git commit -am 'staging: 3 replicas' && git push origin main
  fluxbus reconcile kustomization apps-staging --with-source   # …and watch it roll out
  fluxbus events""",
        flush=True,
    )
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
