"""Writing a fetched commit's tree to disk, and reading what it needs from the object store.

Works on a dulwich object store already filled by a fetch: peel a ref to its
commit, prove a commit lies on a branch, write the tree's files (sparse
checkout, size limit, no symlinks, nothing outside the destination or into
`.git`), list submodules and their URLs from `.gitmodules`.

Blocking: called only from `GitClient`'s worker thread.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dulwich.config import ConfigFile, parse_submodules
from dulwich.object_store import DiskObjectStore
from dulwich.objects import Blob, Commit, ObjectID, Tag, Tree
from dulwich.repo import BaseRepo

from fluxbus_git.errors import GitError, GitNotFoundError
from fluxbus_git.logic.paths import in_sparse_checkout
from fluxbus_git.logic.refs import Checkout, RefKind
from fluxbus_git.packs import blob_chunks, whole_blob
from fluxbus_git.session import Session, SizeExceeded

S_IFGITLINK = 0o160000
"""Tree entry mode of a submodule (a commit of another repository)."""
_S_IFLNK = 0o120000
_S_IFDIR = 0o040000
_S_IFMT = 0o170000


@dataclass
class Written:
    """What `write_tree` wrote so far (shared across the recursion for the size limit)."""

    files: int = 0
    bytes: int = 0


def peel_commit(repo: BaseRepo, sha: bytes, checkout: Checkout, url: str) -> Commit:
    """The commit `sha` names, through annotated tags.

    Raises `GitNotFoundError` when the object was not fetched, `GitError` when
    it is not a commit.
    """
    try:
        obj = repo[ObjectID(sha)]
    except KeyError:
        what = (
            f"commit '{checkout.value}'" if checkout.kind is RefKind.COMMIT else checkout.describe()
        )
        raise GitNotFoundError(f"{what} not found in '{url}'") from None
    while isinstance(obj, Tag):
        obj = repo[obj.object[1]]
    if not isinstance(obj, Commit):
        raise GitError(f"{checkout.describe()} in '{url}' does not point at a commit")
    return obj


def require_contained(repo: BaseRepo, tip: str, checkout: Checkout, url: str) -> None:
    """Raise `GitNotFoundError` unless the wanted commit is reachable from the fetched branch tip."""
    want = ObjectID(checkout.value.encode())
    if want in repo.object_store:
        for entry in repo.get_walker(include=[ObjectID(tip.encode())]):
            if entry.commit.id == want:
                return
    raise GitNotFoundError(
        f"commit '{checkout.value}' not found in branch '{checkout.branch}' of '{url}'"
    )


def write_tree(
    repo: BaseRepo,
    tree_id: ObjectID,
    dest: Path,
    sparse: Sequence[str] | None,
    limit: int | None,
    session: Session,
    written: Written,
    prefix: str = "",
) -> None:
    """Write the files of `tree_id` under `dest` (which exists), counting into `written`.

    Only paths in the `sparse` directories (all when None); symlinks and
    gitlinks are skipped. Raises `SizeExceeded` past `limit` bytes of files.
    """
    tree = repo[tree_id]
    assert isinstance(tree, Tree)
    for entry in tree.iteritems():
        session.check()
        name = entry.path.decode("utf-8", "surrogateescape")
        if name in ("", ".", "..") or "/" in name or "\0" in name or name.lower() == ".git":
            continue  # never let a crafted tree write outside dest or into .git
        rel = f"{prefix}{name}"
        mode = entry.mode
        if mode & _S_IFMT == _S_IFDIR:
            if sparse and not any(
                in_sparse_checkout(rel, sparse) or d.strip("/").startswith(rel + "/")
                for d in sparse
            ):
                continue
            (dest / rel).mkdir(exist_ok=True)
            write_tree(repo, entry.sha, dest, sparse, limit, session, written, rel + "/")
            continue
        if mode & _S_IFMT in (_S_IFLNK, S_IFGITLINK):
            continue  # symlinks never reach an artifact; submodules are handled apart
        if not in_sparse_checkout(rel, sparse):
            continue
        chunks: Iterable[bytes]
        if isinstance(repo.object_store, DiskObjectStore) and (
            found := whole_blob(repo.object_store, entry.sha)
        ):
            # Streamed from the pack: a large file never sits whole in memory.
            written.bytes += found[1].size
            chunks = blob_chunks(*found)
        else:
            blob = repo[entry.sha]
            assert isinstance(blob, Blob)
            written.bytes += blob.raw_length()
            chunks = blob.as_raw_chunks()
        if limit is not None and written.bytes > limit:
            raise SizeExceeded("checked-out files", limit)
        # Three syscalls per file: creation dominates a large checkout's cost.
        fd = os.open(
            dest / rel,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
            0o755 if mode & 0o111 else 0o644,
        )
        try:
            for chunk in chunks:
                session.check()
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        written.files += 1


def gitlinks(repo: BaseRepo, tree_id: ObjectID) -> list[tuple[str, str]]:
    """The submodules of the whole tree: (path, pinned commit id), in tree order."""
    return [
        (e.path.decode(), e.sha.decode())
        for e in repo.object_store.iter_tree_contents(tree_id, include_trees=False)
        if e.path is not None and e.sha is not None and e.mode is not None
        if e.mode & _S_IFMT == S_IFGITLINK
    ]


def submodule_urls(repo: BaseRepo, tree_id: ObjectID) -> dict[str, str]:
    """{path: raw URL} from the root `.gitmodules` of the tree (empty without one)."""
    urls: dict[str, str] = {}
    root = repo[tree_id]
    assert isinstance(root, Tree)
    if b".gitmodules" in root:
        _mode, gm_sha = root[b".gitmodules"]
        cfg = ConfigFile.from_file(io.BytesIO(repo[gm_sha].as_raw_string()))
        for raw_path, raw_url, _name in parse_submodules(cfg):
            urls[raw_path.decode()] = raw_url.decode()
    return urls
