"""Bare Git repositories built with dulwich in a temp dir (no working tree).

Test support, not production code. Commits are deterministic: the same
calls give the same commit ids (timestamps advance one second per commit
from a fixed epoch).

    repo = make_repo(tmp_path, "repo")
    sha = repo.commit({"app/deploy.yaml": "kind: Deployment\\n"})
    repo.commit({"README.md": None}, branch="main")      # None deletes; a new branch
                                                         # starts from master's tip
    repo.commit({"run.sh": File("#!/bin/sh\\n", executable=True), "l": Symlink("run.sh")})
    repo.commit_directory(Path("examples"), branch="main")   # a whole folder, as is
    repo.tag("v1.0.0", annotated=True)
    repo.head("master"), repo.refs()

Reading back what a client pushed goes through the real `git` binary, so
tests see what git sees: `repo.show("app/deploy.yaml", "main")`,
`repo.log("main")` (`CommitInfo`: author, committer, times, message,
whether it carries a signature), `repo.verify_commit(sha, gnupghome)`,
`repo.fsck()` (raises when the repository is inconsistent), and server
knobs: `repo.set_config("receive.denyNonFastForwards", "true")`,
`repo.install_hook("pre-receive", script)`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dulwich.objects import Blob, Commit, ObjectID, Tag, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo

AUTHOR = b"Fluxbus Test <test@fluxbus.invalid>"
EXEC_MODE = 0o100755
FILE_MODE = 0o100644
LINK_MODE = 0o120000


@dataclass(frozen=True)
class File:
    """A file with an explicit mode: `File("#!/bin/sh\\n", executable=True)`."""

    content: str | bytes
    executable: bool = False


@dataclass(frozen=True)
class Symlink:
    """A symbolic link entry pointing at `target`."""

    target: str


FileValue = str | bytes | File | Symlink | None


@dataclass(frozen=True)
class CommitInfo:
    """A commit as `git log` shows it."""

    sha: str
    author_name: str
    author_email: str
    author_time: int
    """Unix seconds."""
    author_date: str
    """ISO 8601 with the commit's own offset (`2024-01-02 03:04:05 +0100`)."""
    committer_name: str
    committer_email: str
    message: str
    """The raw message (`%B`)."""
    parents: tuple[str, ...]
    signed: bool
    """Whether the commit carries a `gpgsig` header."""


_LOG_FIELDS = ("%H", "%an", "%ae", "%at", "%ai", "%cn", "%ce", "%P", "%B")


def _ref(name: str) -> Ref:
    return Ref(name.encode())


def _oid(sha: str | bytes) -> ObjectID:
    return ObjectID(sha.encode() if isinstance(sha, str) else sha)


class GitRepo:
    """A bare Git repository in a temp dir, edited through dulwich objects.

    `path` is the bare repository directory (`<root>/<name>.git`).
    Commit timestamps increase by one second per commit from a fixed epoch
    so that the same calls give the same commit ids.
    """

    _epoch = 1_700_000_000

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name.removesuffix(".git")
        self.repo = Repo.init_bare(str(path), mkdir=True) if not path.exists() else Repo(str(path))
        self._clock = 0

    # -- reading ------------------------------------------------------------
    def refs(self) -> dict[str, str]:
        """All refs as {"refs/heads/master": sha, …} (no HEAD)."""
        return {k.decode(): v.decode() for k, v in self.repo.get_refs().items() if k != b"HEAD"}

    def head(self, branch: str = "master") -> str:
        """The commit id at the tip of `branch` (KeyError when absent)."""
        return self.repo.refs[_ref(f"refs/heads/{branch}")].decode()

    def _get(self, name: str) -> ObjectID | None:
        ref = _ref(name)
        return self.repo.refs[ref] if ref in self.repo.refs else None

    # -- writing ------------------------------------------------------------
    def _tree_items(self, tree_id: ObjectID | None) -> dict[str, tuple[int, ObjectID]]:
        """Flatten a tree into {path: (mode, sha)}."""
        out: dict[str, tuple[int, ObjectID]] = {}
        if tree_id is None:
            return out
        for entry in self.repo.object_store.iter_tree_contents(tree_id):
            if entry.path is not None and entry.mode is not None and entry.sha is not None:
                out[entry.path.decode()] = (entry.mode, entry.sha)
        return out

    def _write_tree(self, flat: Mapping[str, tuple[int, ObjectID]]) -> ObjectID:
        store = self.repo.object_store
        nested: dict[str, Any] = {}
        for path, entry in flat.items():
            node = nested
            *dirs, base = path.split("/")
            for d in dirs:
                node = node.setdefault(d, {})
            node[base] = entry

        def build(node: dict[str, Any]) -> ObjectID:
            tree = Tree()
            for name, value in node.items():
                if isinstance(value, dict):
                    tree.add(name.encode(), 0o040000, build(value))
                else:
                    tree.add(name.encode(), value[0], value[1])
            store.add_object(tree)
            return tree.id

        return build(nested)

    def commit(
        self,
        files: Mapping[str, FileValue],
        branch: str = "master",
        message: str = "update",
        replace: bool = False,
        gitlinks: Mapping[str, str] | None = None,
        start: str | None = None,
    ) -> str:
        """Commit `files` on top of `branch` (created when missing); return the commit id.

        Values: text or bytes (a 0644 file), `File(..., executable=True)`,
        `Symlink(target)`, or None to delete the path. With `replace=True`
        the tree is exactly `files`. `gitlinks` maps paths to commit ids of
        submodules (add `.gitmodules` yourself). A new branch starts, like
        `git checkout -b`, from `start` (a branch or commit id) or else from
        the default branch's tip; `start=""` makes an orphan branch.
        """
        ref = _ref(f"refs/heads/{branch}")
        parent = self._get(f"refs/heads/{branch}")
        if parent is None and start != "":
            if start:
                parent = self._get(f"refs/heads/{start}") or _oid(start)
            else:
                with contextlib.suppress(KeyError):
                    parent = self.repo.refs[_ref("HEAD")]
        base_tree: ObjectID | None = None
        if parent is not None and not replace:
            parent_commit = self.repo[parent]
            assert isinstance(parent_commit, Commit)
            base_tree = parent_commit.tree
        flat = self._tree_items(base_tree)
        store = self.repo.object_store
        for path, value in files.items():
            path = path.strip("/")
            if value is None:
                flat.pop(path, None)
                continue
            if isinstance(value, Symlink):
                blob, mode = Blob.from_string(value.target.encode()), LINK_MODE
            elif isinstance(value, File):
                data = value.content.encode() if isinstance(value.content, str) else value.content
                blob, mode = Blob.from_string(data), EXEC_MODE if value.executable else FILE_MODE
            else:
                data = value.encode() if isinstance(value, str) else value
                blob, mode = Blob.from_string(data), FILE_MODE
            store.add_object(blob)
            flat[path] = (mode, blob.id)
        for path, sha in (gitlinks or {}).items():
            flat[path.strip("/")] = (0o160000, _oid(sha))
        c = Commit()
        c.tree = self._write_tree(flat)
        c.parents = [parent] if parent else []
        c.author = c.committer = AUTHOR
        self._clock += 1
        c.author_time = c.commit_time = self._epoch + self._clock
        c.author_timezone = c.commit_timezone = 0
        c.encoding = b"UTF-8"
        c.message = message.encode() + b"\n"
        store.add_object(c)
        self.repo.refs[ref] = c.id
        head = _ref("HEAD")
        if head not in self.repo.refs or not self.repo.refs.read_ref(head):
            self.repo.refs.set_symbolic_ref(head, ref)
        return c.id.decode()

    def commit_directory(
        self, directory: Path | str, branch: str = "master", message: str = "sync directory"
    ) -> str:
        """Commit the files under `directory` (recursively, `.git` skipped) as the whole tree.

        Executable bits and symlinks are kept. Returns the commit id.
        """
        root = Path(directory)
        files: dict[str, FileValue] = {}
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if ".git" in rel.parts or (path.is_dir() and not path.is_symlink()):
                continue
            if path.is_symlink():
                files[rel.as_posix()] = Symlink(os.readlink(path))
            elif path.is_file():
                files[rel.as_posix()] = File(path.read_bytes(), bool(path.stat().st_mode & 0o111))
        return self.commit(files, branch=branch, message=message, replace=True)

    def set_default_branch(self, branch: str) -> None:
        """Point HEAD at `branch`."""
        self.repo.refs.set_symbolic_ref(_ref("HEAD"), _ref(f"refs/heads/{branch}"))

    def tag(
        self,
        name: str,
        target: str | None = None,
        annotated: bool = False,
        message: str = "release",
    ) -> str:
        """Tag `target` (a commit id or branch name; default master's tip); return the tag ref's value.

        For an annotated tag that is the tag object's id (the commit is its peeled value).
        """
        wanted = target or "master"
        sha = self._get(f"refs/heads/{wanted}") or _oid(wanted)
        ref = _ref(f"refs/tags/{name}")
        if not annotated:
            self.repo.refs[ref] = sha
            return sha.decode()
        t = Tag()
        t.name = name.encode()
        t.object = (Commit, sha)
        t.tagger = AUTHOR
        self._clock += 1
        t.tag_time = self._epoch + self._clock
        t.tag_timezone = 0
        t.message = message.encode() + b"\n"
        self.repo.object_store.add_object(t)
        self.repo.refs[ref] = t.id
        return t.id.decode()

    def set_ref(self, name: str, sha: str) -> None:
        """Create or move any ref (`refs/pull/1/head`, …)."""
        self.repo.refs[_ref(name)] = _oid(sha)

    def delete_ref(self, name: str) -> None:
        """Remove a ref (`refs/heads/x`)."""
        del self.repo.refs[_ref(name)]

    # -- reading with the real git binary -------------------------------------------
    def git(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
        """Run `git <args>` on this repository; return stdout (raises on failure when `check`)."""
        proc = subprocess.run(
            ["git", f"--git-dir={self.path}", *args],
            capture_output=True,
            text=True,
            check=False,
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(self.path),
                "GIT_CONFIG_NOSYSTEM": "1",
                **(env or {}),
            },
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout + (proc.stderr if not check else "")

    def show(self, path: str, ref: str = "master") -> str:
        """The content of `path` at `ref` (a branch, ref or commit id)."""
        return self.git("show", f"{ref}:{path}")

    def log(self, ref: str = "master", count: int = 1) -> list[CommitInfo]:
        """The last `count` commits of `ref`, newest first, as git reads them."""
        fmt = "%x00".join(_LOG_FIELDS) + "%x01"
        out = self.git("log", f"--max-count={count}", f"--format={fmt}", ref, "--")
        infos = []
        for record in out.split("\x01"):
            record = record.lstrip("\n")
            if not record:
                continue
            sha, an, ae, at, ai, cn, ce, parents, body = record.split("\x00")
            raw = self.git("cat-file", "commit", sha)
            headers = raw.split("\n\n", 1)[0]
            signed = any(line.startswith("gpgsig ") for line in headers.splitlines())
            infos.append(
                CommitInfo(sha, an, ae, int(at), ai, cn, ce, body, tuple(parents.split()), signed)
            )
        return infos

    def verify_commit(self, sha: str, gnupghome: Path) -> tuple[bool, str]:
        """`git verify-commit` with the keys of `gnupghome`: (verified, gpg's output)."""
        proc = subprocess.run(
            ["git", f"--git-dir={self.path}", "verify-commit", "--verbose", sha],
            capture_output=True,
            text=True,
            check=False,
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(self.path),
                "GIT_CONFIG_NOSYSTEM": "1",
                "GNUPGHOME": str(gnupghome),
            },
        )
        return proc.returncode == 0, proc.stderr

    def fsck(self) -> str:
        """`git fsck --strict --full`: raises AssertionError when the repository is broken."""
        return self.git("fsck", "--strict", "--full", "--no-progress")

    def set_config(self, key: str, value: str) -> None:
        """Set a config value of this (server side) repository."""
        self.git("config", key, value)

    def install_hook(self, name: str, script: str) -> Path:
        """Install an executable hook (`pre-receive`, `update`…) with `script` as its body."""
        hooks = self.path / "hooks"
        hooks.mkdir(exist_ok=True)
        hook = hooks / name
        hook.write_text(script)
        hook.chmod(0o755)
        return hook

    def close(self) -> None:
        """Release dulwich's file handles (the fixtures do this at teardown)."""
        self.repo.close()

    def __repr__(self) -> str:
        return f"GitRepo({self.name!r})"


def make_repo(root: Path, name: str = "repo") -> GitRepo:
    """Create (or open) the bare repository `<root>/<name>.git`."""
    root.mkdir(parents=True, exist_ok=True)
    return GitRepo(root / f"{name}.git")


def remove_tree(path: Path) -> None:
    """rm -rf that also clears read-only bits (Git pack files are 0444)."""

    def onerror(func: Callable[[str], object], p: str, _exc: object) -> None:
        os.chmod(p, stat.S_IWRITE)
        func(p)

    shutil.rmtree(path, onerror=onerror)
