"""GitClient: list remote refs, shallow-fetch one revision, check out its tree.

fluxcd/pkg/git's twin, the one home of Git access for every service (the
only production module tree that imports dulwich). Every operation runs in
a daemon thread (`fluxbus_common.tasks.to_daemon_thread`), bounded by a timeout, with a `Session` that the loop
cancels when the timeout fires; dulwich, urllib3 and ssh failures come out
as the typed errors of `fluxbus_git.errors`, with messages that say what to
fix and never contain a credential.

Transports (`transport()` picks one per URL, so later operations such as
clone, commit and push reuse it): http(s) in `fluxbus_git.http` (pool
managers cached per TLS identity so polls reuse keep-alive connections),
ssh in `fluxbus_git.ssh` (OpenSSH, locked down).

Polling cost: `ls_remote` is one request (protocol v0 ref advertisement);
a fetch of a branch/tag/semver/name ref re-resolves against the fetch's own
advertisement (no race between listing and fetching) and asks for depth 1.
A bare commit is fetched by id over protocol v2 (depth 1), falling back to
a full fetch of all branches when the server refuses unadvertised ids; a
commit with a branch fetches that branch's history to prove containment.
Memory stays bounded whatever the repository's size: the pack streams into a
file of an on-disk object store in the session's private temp dir (refs and
shallow state stay in memory; no `.git` directory reaches the destination),
the size limit counted on the bytes as they arrive, and is indexed from
disk; the checkout then reads one object at a time and streams each blob
into its file (`fluxbus_git.checkout`). The store is removed when the fetch
ends, however it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import posixpath
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from dulwich.client import GitClient as DulwichClient
from dulwich.errors import GitProtocolError, HangupException
from dulwich.object_store import DiskObjectStore
from dulwich.objects import Commit, ObjectID
from dulwich.refs import Ref
from dulwich.repo import MemoryRepo, Repo

from fluxbus_common.tasks import to_daemon_thread
from fluxbus_git.checkout import (
    Written,
    gitlinks,
    peel_commit,
    require_contained,
    submodule_urls,
    write_tree,
)
from fluxbus_git.errors import (
    GitCredentialsError,
    GitError,
    GitSizeLimitError,
    GitUnreachableError,
    InvalidSpecError,
)
from fluxbus_git.http import PoolCache, http_transport, proxy_error, translate_http
from fluxbus_git.logic.auth import GitAuth, GitProxy, check_auth
from fluxbus_git.logic.paths import in_sparse_checkout, sparse_directories
from fluxbus_git.logic.refs import (
    Checkout,
    RefKind,
    Resolved,
    needs_remote_refs,
    ref_prefixes,
    resolve,
)
from fluxbus_git.logic.url import GitURL, parse_git_url
from fluxbus_git.packs import add_pack_file, new_pack_file
from fluxbus_git.results import FetchResult
from fluxbus_git.session import (
    DEFAULT_TIMEOUT,
    Cancelled,
    Session,
    SizeExceeded,
    check_unpacked_size,
)
from fluxbus_git.ssh import ssh_transport, translate_ssh

__all__ = ["DEFAULT_SIZE_LIMIT", "DEFAULT_TIMEOUT", "FetchResult", "GitClient", "default_client"]

DEFAULT_SIZE_LIMIT = 512 * 1024 * 1024
"""Bytes of pack data, and separately of checked-out files, one fetch may produce."""

MAX_SUBMODULE_DEPTH = 5
"""Recursion guard for `recurseSubmodules` (go-git's default depth is 10; 5 is plenty)."""

SSH_CONNECT_TIMEOUT = 30.0
"""Upper bound of the TCP/TLS/SSH connect timeout, whatever the operation's timeout."""

T = TypeVar("T")


class _ScratchRepo(MemoryRepo):
    """A repository whose refs and shallow list live in memory and whose objects live
    in a `DiskObjectStore` at `path`: a fetched pack stays a file, indexed from disk,
    instead of being inflated whole into a dict (memory a multiple of the repository)."""

    object_store: DiskObjectStore

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.object_store = DiskObjectStore.init(path)


def _translate(
    exc: BaseException, gurl: GitURL, auth: GitAuth | None, proxy: GitProxy | None = None
) -> GitError:
    """The typed error any failure inside an operation stands for."""
    url = gurl.redacted()
    if isinstance(exc, GitError):
        return exc
    if proxy is not None and (err := proxy_error(exc, proxy)) is not None:
        return err
    if isinstance(exc, SizeExceeded):
        return GitSizeLimitError(
            f"'{url}' is larger than the size limit: {exc.what} exceeded {exc.size} bytes"
        )
    if isinstance(exc, Cancelled):
        return GitUnreachableError(f"git operation on '{url}' was cancelled (timeout)")
    if gurl.is_ssh:
        return translate_ssh(exc, url, auth)
    return translate_http(exc, url, auth)


@dataclass
class _FetchPlan:
    """What `determine_wants` learnt from the fetch's own ref advertisement."""

    resolved: Resolved | None = None
    tip: str | None = None
    """The branch tip, for a commit that must lie on a branch."""
    all_heads: bool = False
    """Fall back to fetching every branch (the server refused an unadvertised id)."""
    received: int = 0
    """Pack bytes received by the last fetch attempt."""


class GitClient:
    """Async Git operations (resolve, list, fetch) for the services.

    `timeout` bounds each call (overridable per call: `spec.timeout`);
    `size_limit` bounds the pack bytes received and the bytes checked out.
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        size_limit: int | None = DEFAULT_SIZE_LIMIT,
        list_protocol: int = 0,
    ) -> None:
        self.timeout = timeout
        self.size_limit = size_limit
        self.list_protocol = list_protocol
        """Git protocol of ref listings: 0 is one round trip but lists every ref;
        2 costs two round trips but asks the server only for the wanted refs
        (much cheaper on hosts with many refs, e.g. GitHub pull refs)."""
        self._pools = PoolCache()

    # -- public API ---------------------------------------------------------------
    async def ls_remote(
        self,
        url: str,
        auth: GitAuth | None = None,
        *,
        timeout: float | None = None,
        proxy: GitProxy | None = None,
    ) -> dict[str, str]:
        """List the remote's refs: `{"refs/heads/main": sha, "refs/tags/v1^{}": sha, …}`.

        Raises `InvalidURLError`, `GitAuthError`, `GitHostKeyError`, `GitTLSError`,
        `GitUnreachableError`, `GitNotFoundError` or `GitError`.
        """
        return await self._list(url, auth, timeout, proxy, None)

    async def resolve(
        self,
        url: str,
        checkout: Checkout,
        auth: GitAuth | None = None,
        *,
        timeout: float | None = None,
        proxy: GitProxy | None = None,
    ) -> Resolved:
        """Resolve `checkout` to a commit and Flux revision with one ref listing.

        A bare commit needs no network at all. Raises what `ls_remote` raises,
        plus `GitNotFoundError` / `GitNoSemverMatchError`.
        """
        gurl = parse_git_url(url)
        if not needs_remote_refs(checkout):
            return resolve(checkout, {}, gurl.redacted())
        refs = await self._list(url, auth, timeout, proxy, ref_prefixes(checkout))
        return resolve(checkout, refs, gurl.redacted())

    async def fetch(
        self,
        url: str,
        checkout: Checkout,
        dest: Path | str,
        auth: GitAuth | None = None,
        *,
        timeout: float | None = None,
        sparse_checkout: Sequence[str] | None = None,
        recurse_submodules: bool = False,
        size_limit: int | None = None,
        proxy: GitProxy | None = None,
    ) -> FetchResult:
        """Shallow-fetch the revision `checkout` names and write its tree into `dest`.

        `dest` must not exist or be empty. Symlinks in the tree are not
        written (artifacts never contain them). Raises the errors of
        `resolve`, plus `GitSizeLimitError` and `InvalidSpecError` for a bad
        sparse checkout directory.
        """
        gurl = parse_git_url(url)
        limit = size_limit if size_limit is not None else self.size_limit
        target = Path(dest)
        sparse = sparse_directories(sparse_checkout)
        return await self._run(
            gurl,
            auth,
            timeout,
            lambda s: self._fetch_sync(
                gurl, checkout, target, auth, s, sparse, recurse_submodules, limit, 0
            ),
            proxy,
        )

    def close(self) -> None:
        """Drop cached HTTP connections."""
        self._pools.clear()

    # -- plumbing ----------------------------------------------------------------------
    async def _list(
        self,
        url: str,
        auth: GitAuth | None,
        timeout: float | None,
        proxy: GitProxy | None,
        prefixes: list[str] | None,
    ) -> dict[str, str]:
        gurl = parse_git_url(url)
        return await self._run(
            gurl, auth, timeout, lambda s: self._ls_remote_sync(gurl, auth, s, prefixes), proxy
        )

    async def _run(
        self,
        gurl: GitURL,
        auth: GitAuth | None,
        timeout: float | None,
        work: Callable[[Session], T],
        proxy: GitProxy | None = None,
    ) -> T:
        """Run `work` in a thread with a fresh `Session`, bounded by the timeout.

        The session is cancelled when the call ends, however it ends; what the
        worker left behind (ssh children, temp files) is cleaned up in a thread.
        """
        limit = timeout or self.timeout
        check_auth(gurl, auth)
        if proxy is not None and gurl.is_ssh:
            raise GitCredentialsError(
                f"a proxy is set for SSH URL '{gurl.redacted()}': only http(s) URLs can use "
                "spec.proxySecretRef (SOCKS5 for SSH is not supported)"
            )
        session = Session(timeout=limit, proxy=proxy)
        completed = False
        try:
            async with asyncio.timeout(limit):
                # A daemon thread: a server that never answers must not keep the
                # process alive after SIGTERM (executor threads are joined at exit).
                result = await to_daemon_thread(self._guard, gurl, auth, session, work)
            completed = True
            return result
        except TimeoutError:
            raise GitUnreachableError(
                f"git operation on '{gurl.redacted()}' timed out after {limit:g}s"
            ) from None
        finally:
            session.cancel()
            # After a timeout or cancellation the worker may still hold resources.
            if not completed or session.needs_cleanup:
                await to_daemon_thread(session.close)

    @staticmethod
    def _guard(
        gurl: GitURL, auth: GitAuth | None, session: Session, work: Callable[[Session], T]
    ) -> T:
        try:
            return work(session)
        except (GitError, InvalidSpecError):
            raise
        except Exception as e:
            raise _translate(e, gurl, auth, session.proxy) from None

    def transport(
        self, gurl: GitURL, auth: GitAuth | None, session: Session
    ) -> tuple[DulwichClient, str]:
        """A dulwich client for `gurl` and the repository path to ask it for (worker thread)."""
        if gurl.is_ssh:
            assert auth is not None  # check_auth refused SSH without credentials
            return ssh_transport(
                gurl, auth, session, connect_timeout=min(session.timeout, SSH_CONNECT_TIMEOUT)
            )
        return http_transport(gurl, auth, self._pools, session.timeout, session.proxy)

    def _ls_remote_sync(
        self,
        gurl: GitURL,
        auth: GitAuth | None,
        session: Session,
        prefixes: list[str] | None = None,
    ) -> dict[str, str]:
        client, path = self.transport(gurl, auth, session)
        if self.list_protocol == 2 and prefixes:
            result = client.get_refs(
                path.encode(), protocol_version=2, ref_prefix=[p.encode() for p in prefixes]
            )
        else:
            # Protocol v0: the ref advertisement is a single round trip.
            result = client.get_refs(path.encode(), protocol_version=0)
        return {
            k.decode("utf-8", "replace"): v.decode()
            for k, v in result.refs.items()
            if v is not None and k != b"HEAD"
        }

    def _fetch_sync(
        self,
        gurl: GitURL,
        checkout: Checkout,
        dest: Path,
        auth: GitAuth | None,
        session: Session,
        sparse: Sequence[str] | None,
        recurse: bool,
        limit: int | None,
        level: int,
    ) -> FetchResult:
        if dest.exists() and any(dest.iterdir()):
            raise GitError(f"checkout directory '{dest}' is not empty")
        dest.mkdir(parents=True, exist_ok=True)
        # Objects on disk in the session's private temp dir (the destination never gets a
        # .git directory), removed when this fetch ends; submodules get their own store.
        store = Path(tempfile.mkdtemp(prefix="objects-", dir=session.tmp))
        try:
            return self._fetch_into(
                store, gurl, checkout, dest, auth, session, sparse, recurse, limit, level
            )
        finally:
            shutil.rmtree(store, ignore_errors=True)

    def _fetch_into(
        self,
        store: Path,
        gurl: GitURL,
        checkout: Checkout,
        dest: Path,
        auth: GitAuth | None,
        session: Session,
        sparse: Sequence[str] | None,
        recurse: bool,
        limit: int | None,
        level: int,
    ) -> FetchResult:
        with contextlib.closing(_ScratchRepo(store / "objects")) as repo:
            commit_obj, resolved, received = self.fetch_objects(
                repo, gurl, checkout, auth, session, limit
            )
            written = Written()
            write_tree(repo, commit_obj.tree, dest, sparse, limit, session, written)
            if recurse:
                self._submodules(
                    repo, commit_obj.tree, gurl, dest, auth, session, limit, level, sparse
                )
            message = commit_obj.message.decode("utf-8", "replace").strip().splitlines()
            return FetchResult(
                resolved, dest, message[0] if message else "", written.files, received
            )

    def fetch_objects(
        self,
        repo: _ScratchRepo | Repo,
        gurl: GitURL,
        checkout: Checkout,
        auth: GitAuth | None,
        session: Session,
        limit: int | None,
    ) -> tuple[Commit, Resolved, int]:
        """Negotiate `checkout` with the remote and receive its objects into `repo` (worker thread).

        Resolves against the fetch's own ref advertisement, asks for depth 1
        where that is enough (a commit on a branch fetches the branch's history
        to prove containment), streams the pack into a file of `repo`'s object
        store under the size limit and records the shallow boundary. Returns
        the peeled commit, its resolution and the pack bytes received.
        """
        url = gurl.redacted()
        client, path = self.transport(gurl, auth, session)
        plan = _FetchPlan()

        def determine_wants(
            refs: Mapping[Ref, ObjectID | None], depth: int | None = None
        ) -> list[ObjectID]:
            session.check()
            listing = {k.decode("utf-8", "replace"): v.decode() for k, v in refs.items() if v}
            resolved = resolve(checkout, listing, url) if needs_remote_refs(checkout) else None
            if resolved is None:
                resolved = resolve(checkout, {}, url)
            plan.resolved = resolved
            if checkout.kind is RefKind.COMMIT:
                if checkout.branch is not None:
                    assert resolved.ref is not None
                    plan.tip = listing[resolved.ref]
                    return [ObjectID(listing[resolved.ref].encode())]
                if plan.all_heads:
                    return sorted(
                        {
                            ObjectID(v.encode())
                            for k, v in listing.items()
                            if k.startswith("refs/heads/")
                        }
                    )
                return [ObjectID(resolved.commit.encode())]
            assert resolved.ref is not None
            # The advertised value (a tag object for annotated tags): always fetchable.
            return [ObjectID((listing.get(resolved.ref) or resolved.commit).encode())]

        def fetch(depth: int | None, protocol: int) -> None:
            plan.received = 0
            store = repo.object_store
            f, pack_path = new_pack_file(store)

            def abort() -> None:
                f.close()
                Path(pack_path).unlink(missing_ok=True)

            def pack_data(data: bytes) -> int:
                session.check()
                plan.received += len(data)
                if limit is not None and plan.received > limit:
                    raise SizeExceeded("pack data", limit)
                f.write(data)
                return len(data)

            try:
                result = client.fetch_pack(
                    path.encode(),
                    determine_wants,
                    repo.get_graph_walker(),
                    pack_data,
                    depth=depth,
                    protocol_version=protocol,
                )
            except BaseException:
                abort()
                raise
            if plan.received:
                try:
                    if limit is not None:
                        check_unpacked_size(f, limit, session)
                    add_pack_file(store, f, pack_path, session)
                except BaseException:
                    abort()
                    raise
            else:
                abort()
            repo.update_shallow(result.new_shallow, result.new_unshallow)

        if checkout.kind is RefKind.COMMIT and checkout.branch is None:
            try:
                fetch(depth=1, protocol=2)
            except (GitProtocolError, HangupException):
                # Servers refuse ids they do not advertise (v0), answer with an
                # error or just hang up: fall back to all branches and look for
                # the commit there (an outage fails again, with its own error).
                session.check()
                plan.all_heads = True
                fetch(depth=None, protocol=0)
        elif checkout.kind is RefKind.COMMIT:
            fetch(depth=None, protocol=0)
        else:
            fetch(depth=1, protocol=0)
        resolved = plan.resolved
        assert resolved is not None  # determine_wants ran: fetch_pack asks it first
        session.check()
        if checkout.kind is RefKind.COMMIT and checkout.branch is not None:
            assert plan.tip is not None
            require_contained(repo, plan.tip, checkout, url)
        commit_obj = peel_commit(repo, resolved.commit.encode(), checkout, url)
        return commit_obj, resolved.with_commit(commit_obj.id.decode()), plan.received

    def _submodules(
        self,
        repo: MemoryRepo,
        tree_id: ObjectID,
        gurl: GitURL,
        dest: Path,
        auth: GitAuth | None,
        session: Session,
        limit: int | None,
        level: int,
        sparse: Sequence[str] | None,
    ) -> None:
        """Fetch each submodule's pinned commit into its path (same credentials on the same host)."""
        links = gitlinks(repo, tree_id)
        if not links:
            return
        if level >= MAX_SUBMODULE_DEPTH:
            raise GitError(
                f"submodules of '{gurl.redacted()}' nest deeper than {MAX_SUBMODULE_DEPTH}"
            )
        urls = submodule_urls(repo, tree_id)
        for sm_path, sha in links:
            if not in_sparse_checkout(sm_path, sparse):
                continue
            raw = urls.get(sm_path)
            if raw is None:
                raise GitError(f"submodule '{sm_path}' has no URL in .gitmodules")
            if raw.startswith(("./", "../")):
                # Relative to the superproject's URL, as git resolves it.
                path = posixpath.normpath(posixpath.join(gurl.path, raw))
                raw = dataclasses.replace(gurl, path=path).redacted()
            sub_url = parse_git_url(raw)
            sub_auth = auth if (sub_url.host, sub_url.scheme) == (gurl.host, gurl.scheme) else None
            if sub_url.is_ssh:
                check_auth(sub_url, sub_auth)
            target = dest / sm_path
            if target.exists():
                shutil.rmtree(target)
            self._fetch_sync(
                sub_url,
                Checkout(RefKind.COMMIT, sha),
                target,
                sub_auth,
                session,
                None,
                True,
                limit,
                level + 1,
            )


_default: GitClient | None = None


def default_client() -> GitClient:
    """A process-wide `GitClient` with default timeout and size limit."""
    global _default
    if _default is None:
        _default = GitClient()
    return _default
