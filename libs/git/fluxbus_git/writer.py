"""GitWriter: clone a repository into a work tree, commit the caller's edits, push them.

Image automation's half of fluxcd/pkg/git: `clone` a GitRepository's
checkout into a normal (non-bare) work tree, `commit` whatever the caller
changed there (optionally OpenPGP-signed, `fluxbus_git.signing`), `push`
it to one or more refspecs. It is a `GitClient`, so it shares the
transports (http(s) with basic/bearer auth, CA and client certificates,
proxies; ssh with known_hosts), the timeouts, cancellation, size limits
and the typed errors of fetching; no second copy of any of that.

Clone is shallow where fetching is (depth 1 for a branch, tag, semver or
ref name): a push only needs the parent to exist on the remote, which it
does. Push never rewrites history unless asked (`force=True`): before any
data is sent each remote ref is checked to be an ancestor of what replaces
it (`GitNonFastForwardError` otherwise: someone pushed meanwhile, nothing
changed); the server's own rejections are mapped too (`non-fast-forward`,
`fetch first`, a lost compare-and-swap → `GitNonFastForwardError`; any
other → `GitPushRejectedError` with the ref and the server's reason).
Push options are sent when the server advertises `push-options` and
silently left out otherwise, as Flux (go-git) does.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dulwich.client import SendPackError
from dulwich.objects import Commit, ObjectID
from dulwich.pack import UnpackedObject
from dulwich.refs import Ref
from dulwich.repo import Repo

from fluxbus_git.client import DEFAULT_SIZE_LIMIT, GitClient
from fluxbus_git.errors import (
    GitError,
    GitNonFastForwardError,
    GitPushRejectedError,
    InvalidSpecError,
)
from fluxbus_git.logic.auth import GitAuth, GitProxy
from fluxbus_git.logic.refs import HEADS, Checkout, RefKind
from fluxbus_git.logic.refspec import PushRefspec, parse_push_refspec
from fluxbus_git.logic.url import GitURL, parse_git_url
from fluxbus_git.results import CloneResult, CommitAuthor, PushResult, SigningKey
from fluxbus_git.session import DEFAULT_TIMEOUT, Session
from fluxbus_git.signing import sign
from fluxbus_git.worktree import checkout as checkout_tree
from fluxbus_git.worktree import snapshot, write_index

__all__ = ["GitWriter"]

REMOTE = "origin"
"""Name of the clone's remote (for tracking refs and `git status` in the work tree)."""

_ZERO = b"0" * 40

_NON_FAST_FORWARD = ("non-fast-forward", "fetch first", "stale info", "but expected")
"""Words of a server refusing an update because the ref moved (git's receive-pack wording)."""

MAX_SERVER_LINES = 20
"""Lines of the server's sideband messages (hook output) kept for an error message."""


def _hex(sha: bytes | str) -> str:
    return sha.decode() if isinstance(sha, bytes) else sha


def _branch_of(checkout: Checkout) -> str | None:
    """The local branch a clone of `checkout` is on (None: detached HEAD)."""
    if checkout.kind is RefKind.BRANCH:
        return checkout.value
    if checkout.kind is RefKind.COMMIT:
        return checkout.branch
    return None


def _identity(author: CommitAuthor) -> bytes:
    for part, what in ((author.name, "name"), (author.email, "email")):
        if any(c in part for c in "<>\n\r\0"):
            raise InvalidSpecError(
                f"spec.git.commit.author.{what}: {part!r} may not contain '<', '>' or newlines"
            )
    if not author.email.strip():
        raise InvalidSpecError("spec.git.commit.author.email is required")
    name = author.name.strip()
    return f"{name} <{author.email.strip()}>".encode() if name else f"<{author.email}>".encode()


def _is_ancestor(repo: Repo, ancestor: ObjectID, tip: ObjectID) -> bool:
    """Whether commit `ancestor` is reachable from `tip` in the local (maybe shallow) history.

    An unknown `ancestor` (the remote moved to commits this clone never saw)
    is not: the push would drop them.
    """
    store = repo.object_store
    if ancestor not in store:
        return False
    shallow = repo.get_shallow()
    seen: set[ObjectID] = set()
    todo = [tip]
    while todo:
        sha = todo.pop()
        if sha == ancestor:
            return True
        if sha in seen or sha not in store:
            continue
        seen.add(sha)
        obj = store[sha]
        if isinstance(obj, Commit) and sha not in shallow:
            todo.extend(obj.parents)
    return False


@dataclass
class _PushState:
    """What the push learnt while talking to the server."""

    updates: dict[str, str] = field(default_factory=dict)
    server_lines: list[str] = field(default_factory=list)
    partial: bytes = b""

    def progress(self, data: bytes) -> None:
        """Collect the server's sideband text (hook output names why a push was refused)."""
        text = self.partial + data
        *lines, self.partial = text.replace(b"\r", b"\n").split(b"\n")
        for line in lines:
            stripped = line.decode("utf-8", "replace").strip()
            if stripped and len(self.server_lines) < MAX_SERVER_LINES:
                self.server_lines.append(stripped)


class GitWriter(GitClient):
    """Clone, commit and push for image automation (one instance per service).

    `timeout` bounds each network call (overridable per call: `spec.timeout`
    of the GitRepository); `size_limit` bounds what a clone receives.
    """

    def __init__(
        self, *, timeout: float = DEFAULT_TIMEOUT, size_limit: int | None = DEFAULT_SIZE_LIMIT
    ) -> None:
        super().__init__(timeout=timeout, size_limit=size_limit)

    # -- clone ---------------------------------------------------------------------
    async def clone(
        self,
        url: str,
        checkout: Checkout,
        dest: Path,
        auth: GitAuth | None = None,
        *,
        timeout: float | None = None,
        proxy: GitProxy | None = None,
        size_limit: int | None = None,
    ) -> CloneResult:
        """Clone the revision `checkout` names into `dest` as a work tree ready for edits.

        `dest` must be missing or empty. Afterwards it holds the commit's files
        and a `.git` directory; a branch checkout (or a commit with a branch) is
        on that local branch, tracking `origin/<branch>`; a tag, semver, ref name
        or bare commit leaves HEAD detached. The history is shallow where a
        fetch is; `size_limit` overrides the writer's limit on received pack
        bytes. On failure `dest` is left empty. Raises the errors of
        `GitClient.fetch` (`GitAuthError`, `GitNotFoundError`, `GitUnreachableError`…).
        """
        gurl = parse_git_url(url)
        target = Path(dest)
        limit = size_limit if size_limit is not None else self.size_limit
        return await self._run(
            gurl,
            auth,
            timeout,
            lambda s: self._clone_sync(gurl, checkout, target, auth, s, limit),
            proxy,
        )

    def _clone_sync(
        self,
        gurl: GitURL,
        checkout: Checkout,
        dest: Path,
        auth: GitAuth | None,
        session: Session,
        limit: int | None,
    ) -> CloneResult:
        if dest.exists() and any(dest.iterdir()):
            raise GitError(f"clone directory '{dest}' is not empty")
        dest.mkdir(parents=True, exist_ok=True)
        try:
            with Repo.init(str(dest)) as repo:
                commit, _resolved, _received = self.fetch_objects(
                    repo, gurl, checkout, auth, session, limit
                )
                branch = _branch_of(checkout)
                self._set_head(repo, gurl, commit.id, branch)
                session.check()
                checkout_tree(repo, commit.tree, dest)
                return CloneResult(_hex(commit.id), branch)
        except BaseException:
            for child in dest.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
            raise

    @staticmethod
    def _set_head(repo: Repo, gurl: GitURL, sha: ObjectID, branch: str | None) -> None:
        """Point HEAD at `branch` (tracking origin's) or, without one, detach it at `sha`."""
        config = repo.get_config()
        section = (b"remote", REMOTE.encode())
        config.set(section, b"url", gurl.redacted().encode())
        config.set(section, b"fetch", f"+refs/heads/*:refs/remotes/{REMOTE}/*".encode())
        if branch is None:
            repo.refs.remove_if_equals(Ref(b"HEAD"), None)
            repo.refs.add_if_new(Ref(b"HEAD"), sha)
        else:
            local = Ref((HEADS + branch).encode())
            repo.refs[local] = sha
            repo.refs[Ref(f"refs/remotes/{REMOTE}/{branch}".encode())] = sha
            repo.refs.set_symbolic_ref(Ref(b"HEAD"), local)
            config.set((b"branch", branch.encode()), b"remote", REMOTE.encode())
            config.set((b"branch", branch.encode()), b"merge", local)
        config.write_to_path()

    # -- commit --------------------------------------------------------------------
    async def commit(
        self,
        dest: Path,
        message: str,
        author: CommitAuthor,
        *,
        signing_key: SigningKey | None = None,
        when: datetime | None = None,
    ) -> str | None:
        """Commit every added, changed and removed file under `dest` on top of HEAD.

        Author and committer are `author` at `when` (default now; a naive
        datetime is UTC). Returns the new commit id, or None when the files
        equal HEAD's tree (no empty commits). With `signing_key` the commit
        carries an OpenPGP `gpgsig` header as `git commit -S` writes it.
        Raises `InvalidSpecError` (bad author), `GitSigningError`, `GitError`.
        """
        identity = _identity(author)
        stamp = when or datetime.now(UTC)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        # Local disk and CPU only: no network, nothing that can hang.
        return await asyncio.to_thread(
            self._commit_sync, Path(dest), message, identity, signing_key, stamp
        )

    @staticmethod
    def _commit_sync(
        dest: Path, message: str, identity: bytes, key: SigningKey | None, when: datetime
    ) -> str | None:
        try:
            repo = Repo(str(dest))
        except Exception:
            raise GitError(f"'{dest}' is not a clone made by GitWriter.clone") from None
        with repo:
            try:
                head = repo.refs[Ref(b"HEAD")]
            except KeyError:
                raise GitError(f"the clone in '{dest}' has no HEAD commit") from None
            parent = repo[head]
            assert isinstance(parent, Commit)
            try:
                tree, entries = snapshot(repo, dest)
            except OSError as e:
                raise GitError(
                    f"could not read the work tree '{dest}': {e.strerror or e}"
                ) from None
            if tree == parent.tree:
                return None
            offset = when.utcoffset()
            tz = int(offset.total_seconds()) if offset is not None else 0
            c = Commit()
            c.tree = tree
            c.parents = [head]
            c.author = c.committer = identity
            c.author_time = c.commit_time = int(when.timestamp())
            c.author_timezone = c.commit_timezone = tz
            text = message if message.endswith("\n") else message + "\n"
            c.message = text.encode("utf-8")
            if key is not None:
                # The signature covers the commit exactly as serialized without it.
                c.gpgsig = sign(key, c.as_raw_string())
            repo.object_store.add_object(c)
            if not repo.refs.set_if_equals(Ref(b"HEAD"), head, c.id):
                raise GitError(f"HEAD of the clone in '{dest}' moved while committing")
            write_index(repo, entries)
            return _hex(c.id)

    # -- push ----------------------------------------------------------------------
    async def push(
        self,
        dest: Path,
        url: str,
        refspecs: Sequence[str],
        auth: GitAuth | None = None,
        *,
        timeout: float | None = None,
        proxy: GitProxy | None = None,
        options: Mapping[str, str] | None = None,
        force: bool = False,
    ) -> PushResult:
        """Push the clone in `dest` to `url` along `refspecs` (`src:dst`, see `logic.refspec`).

        Every remote ref must fast-forward to its new commit, or
        `GitNonFastForwardError` is raised before anything is sent (nothing
        changes on the remote). `force=True` skips that check (Flux's
        `GitForcePushBranch` for a push branch that differs from the checkout
        branch) — the server may still refuse. `options` are git push options
        (`spec.git.push.options`). Returns the commit of the first refspec and
        every remote ref → commit it now holds. Raises `InvalidSpecError` for
        a bad refspec or option, `GitNonFastForwardError`,
        `GitPushRejectedError`, and the transport errors of fetching.
        """
        if not refspecs:
            raise InvalidSpecError("push needs at least one refspec")
        specs = [parse_push_refspec(s) for s in refspecs]
        push_options = []
        for k, v in (options or {}).items():
            if not k or any(c in f"{k}{v}" for c in "\n\r\0"):
                raise InvalidSpecError(f"spec.git.push.options: invalid option {k!r}")
            push_options.append((f"{k}={v}" if v else k).encode())
        gurl = parse_git_url(url)
        target = Path(dest)
        return await self._run(
            gurl,
            auth,
            timeout,
            lambda s: self._push_sync(target, gurl, specs, auth, s, push_options, force),
            proxy,
        )

    @staticmethod
    def _local(repo: Repo, spec: PushRefspec) -> ObjectID:
        """The commit a refspec's source names in the clone."""
        name = spec.src.encode()
        try:
            if len(name) in (40, 64) and not name.startswith(b"refs/"):
                if ObjectID(name) in repo.object_store:
                    return ObjectID(name)
                raise KeyError(name)
            return repo.refs[Ref(name)]
        except KeyError:
            raise InvalidSpecError(
                f"push refspec '{spec.src}:{spec.dst}': '{spec.src}' does not exist in the clone"
            ) from None

    def _push_sync(
        self,
        dest: Path,
        gurl: GitURL,
        specs: list[PushRefspec],
        auth: GitAuth | None,
        session: Session,
        push_options: list[bytes],
        force: bool,
    ) -> PushResult:
        url = gurl.redacted()
        try:
            repo = Repo(str(dest))
        except Exception:
            raise GitError(f"'{dest}' is not a clone made by GitWriter.clone") from None
        with repo:
            wanted: dict[str, ObjectID] = {}
            for spec in specs:
                sha = self._local(repo, spec)
                if wanted.setdefault(spec.dst, sha) != sha:
                    raise InvalidSpecError(f"push refspecs name '{spec.dst}' twice")
            state = _PushState()

            def update_refs(old: dict[Ref, ObjectID]) -> dict[Ref, ObjectID]:
                session.check()
                new: dict[Ref, ObjectID] = {}
                for dst, sha in wanted.items():
                    current = old.get(Ref(dst.encode()))
                    if current is not None and current != _ZERO and current != sha and not force:
                        if not _is_ancestor(repo, current, sha):
                            raise GitNonFastForwardError(
                                f"push to '{dst}' of '{url}' rejected (non-fast-forward): "
                                f"the remote is at {_hex(current)[:12]}, which "
                                f"{_hex(sha)[:12]} does not contain; someone pushed meanwhile",
                                dst,
                            )
                    new[Ref(dst.encode())] = sha
                    state.updates[dst] = _hex(sha)
                return new

            def generate_pack_data(
                have: AbstractSet[ObjectID],
                want: AbstractSet[ObjectID],
                *,
                ofs_delta: bool = True,
                progress: Callable[[bytes], None] | None = None,
            ) -> tuple[int, Iterator[UnpackedObject]]:
                session.check()
                # Remote tips this clone never fetched are skipped as haves; the
                # shallow boundary stops the walk at the commit the remote has.
                return repo.generate_pack_data(set(have), set(want), ofs_delta=ofs_delta)

            client, path = self.transport(gurl, auth, session)
            try:
                result = client.send_pack(
                    path.encode(),
                    update_refs,
                    generate_pack_data,
                    progress=state.progress,
                    push_options=push_options or None,
                )
            except SendPackError as e:
                raise GitPushRejectedError(
                    f"'{url}' refused the pushed objects: {self._redact(str(e), auth)}",
                    "*",
                    str(e),
                ) from None
            for ref, error in (result.ref_status or {}).items():
                if error is not None:
                    raise self._rejection(url, _hex(ref), error, state, auth)
            for dst, pushed in state.updates.items():
                if dst.startswith(HEADS):
                    tracking = f"refs/remotes/{REMOTE}/{dst[len(HEADS) :]}"
                    repo.refs[Ref(tracking.encode())] = ObjectID(pushed.encode())
            return PushResult(_hex(wanted[specs[0].dst]), dict(state.updates))

    @staticmethod
    def _redact(text: str, auth: GitAuth | None) -> str:
        return auth.redact(text) if auth else text

    def _rejection(
        self, url: str, ref: str, error: str, state: _PushState, auth: GitAuth | None
    ) -> GitError:
        """The typed error for one ref the server refused (its words, credentials redacted)."""
        reason = self._redact(error.strip(), auth)
        said = "; ".join(
            line.removeprefix("remote: ") for line in state.server_lines if "error:" in line
        ) or "; ".join(state.server_lines[-3:])
        detail = f" ({self._redact(said, auth)})" if said else ""
        # A lost compare-and-swap shows only in the server's messages ("failed to update
        # ref" + "cannot lock ref 'x': is at A but expected B").
        if any(word in f"{reason} {said}".lower() for word in _NON_FAST_FORWARD):
            return GitNonFastForwardError(
                f"push to '{ref}' of '{url}' rejected: {reason}{detail}; someone pushed meanwhile",
                ref,
            )
        return GitPushRejectedError(
            f"push to '{ref}' of '{url}' rejected: {reason}{detail}", ref, reason
        )
