"""A clone's work tree: check a commit out with an index, snapshot the edited files into a tree.

The writer's clone is an ordinary non-bare repository (`.git` inside the
destination) so that the caller edits files in place and `git status` there
tells the truth. `checkout` writes a commit's files and the index (symlinks
stay symlinks, executable bits are kept, no path may enter `.git`);
`snapshot` reads every file under the root back — added, changed and
removed files alike, nested `.git` directories ignored, submodule entries
(gitlinks) carried over from the index as they were — stores the blobs and
returns the tree, and `write_index` records that tree in the index.

Files are hashed whole rather than trusted by their index stat data: an
image tag bump keeps the size, and a racy timestamp must not hide it.

Blocking: called only from the writer's worker threads.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from dulwich.index import (
    Index,
    IndexEntry,
    blob_from_path_and_stat,
    build_index_from_tree,
    commit_tree,
    index_entry_from_stat,
)
from dulwich.objects import ObjectID
from dulwich.repo import Repo

from fluxbus_git.session import Session

S_IFGITLINK = 0o160000
"""Tree entry mode of a submodule (a commit of another repository)."""
FILE_MODE = 0o100644
EXEC_MODE = 0o100755
LINK_MODE = 0o120000


@dataclass(frozen=True)
class Entry:
    """One path of a snapshot: its blob (or gitlink commit), mode and the stat it was read with."""

    path: bytes
    sha: ObjectID
    mode: int
    stat: os.stat_result | None
    """None for a gitlink carried over from the index."""


def checkout(repo: Repo, tree: ObjectID, root: Path) -> None:
    """Write `tree`'s files under `root` and record them in `repo`'s index."""
    build_index_from_tree(
        str(root), repo.index_path(), repo.object_store, tree, honor_filemode=True
    )


def _gitlinks(repo: Repo) -> dict[bytes, IndexEntry]:
    """Submodule entries of the index (kept as they are: the clone has no submodules)."""
    index = repo.open_index()
    out: dict[bytes, IndexEntry] = {}
    for path, entry in index.items():
        if isinstance(entry, IndexEntry) and stat.S_IFMT(entry.mode) == S_IFGITLINK:
            out[path] = entry
    return out


def snapshot(
    repo: Repo, root: Path, session: Session | None = None
) -> tuple[ObjectID, list[Entry]]:
    """Store every file under `root` (not `.git`) as blobs; return the tree they make and its entries.

    Regular files get mode 0644 or 0755 (owner's execute bit), symlinks keep
    their target; sockets and other special files are skipped, as git does.
    Raises OSError when a file cannot be read.
    """
    store = repo.object_store
    links = _gitlinks(repo)
    link_dirs = {os.fsdecode(p) for p in links}
    entries: list[Entry] = [Entry(p, e.sha, S_IFGITLINK, None) for p, e in links.items()]
    base = str(root)
    for dirpath, dirnames, filenames in os.walk(base):
        if session is not None:
            session.check()
        rel_dir = os.path.relpath(dirpath, base)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        # os.walk lists symlinks to directories among dirnames (never entering them):
        # they are entries like any symlink. Pruning dirnames in place stops the walk
        # at nested repositories, the clone's own .git and submodule directories.
        linked = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = sorted(
            d for d in dirnames if d not in linked and d != ".git" and rel_dir + d not in link_dirs
        )
        names = [*filenames, *linked]
        for name in sorted(set(names)):
            rel = rel_dir + name
            if name == ".git" or rel in link_dirs:
                continue
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                mode = LINK_MODE
            elif stat.S_ISREG(st.st_mode):
                mode = EXEC_MODE if st.st_mode & stat.S_IXUSR else FILE_MODE
            else:
                continue
            blob = blob_from_path_and_stat(os.fsencode(full), st)
            if blob.id not in store:
                store.add_object(blob)
            entries.append(Entry(os.fsencode(rel), blob.id, mode, st))
    tree = commit_tree(store, [(e.path, e.sha, e.mode) for e in entries])
    return tree, entries


def write_index(repo: Repo, entries: list[Entry]) -> None:
    """Make the index match a snapshot (so `git status` in the clone shows a clean tree)."""
    old = repo.open_index()
    index = Index(repo.index_path(), read=False)
    for e in entries:
        if e.stat is None:
            kept = old[e.path] if e.path in old else None
            if isinstance(kept, IndexEntry):
                index[e.path] = kept
            continue
        index[e.path] = index_entry_from_stat(e.stat, e.sha, e.mode)
    index.write()
