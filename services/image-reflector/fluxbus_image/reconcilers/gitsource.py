"""Where an ImageUpdateAutomation reads and writes: its GitRepository's URL,
credentials, proxy and timeout, the ref to check out, the branch to push to,
and the commit author and signing key — Flux's `buildGitConfig` and
`configurePush`.
"""

from __future__ import annotations

from dataclasses import dataclass

from fluxbus_common.api import GitRepository, ImageUpdateAutomation
from fluxbus_common.api.source import GitRepositoryRef
from fluxbus_git.errors import GitError
from fluxbus_git.logic.auth import GitAuth, GitProxy
from fluxbus_git.logic.refs import Checkout, checkout_for
from fluxbus_git.results import CommitAuthor, SigningKey
from fluxbus_image.access import read_secret
from fluxbus_image.errors import InvalidSourceConfig, SourceManagerFailed
from fluxbus_image.ports import ImageStore
from fluxbus_image.reconcilers.common import read_object

DEFAULT_BRANCH = "master"
"""go-git's default branch, which Flux falls back to when no ref is given."""


@dataclass(frozen=True, repr=False)
class GitSource:
    """Everything one automation run needs to clone, commit and push (repr hides secrets)."""

    repository: GitRepository
    url: str
    auth: GitAuth | None
    proxy: GitProxy | None
    timeout: float
    checkout: Checkout
    checkout_branch: str | None
    push_branch: str
    switch_branch: bool
    """The push branch differs from the checkout branch (it is created from it when new)."""
    refspec: str | None
    author: CommitAuthor
    signing_key: SigningKey | None

    def __repr__(self) -> str:
        return f"GitSource(url={self.url!r}, push_branch={self.push_branch!r})"

    @property
    def follows_push_branch(self) -> bool:
        """The GitRepository fetches the branch pushed to (so request its reconcile)."""
        ref = self.repository.spec.effective_ref
        return (
            bool(ref.branch)
            and ref.branch == self.push_branch
            and not (ref.tag or ref.semver or ref.name or ref.commit)
        )


async def _secret(store: ImageStore, namespace: str, name: str, field: str) -> dict[str, bytes]:
    return await read_secret(
        store, namespace, name, field, SourceManagerFailed, "failed configuring source manager"
    )


def push_branch(
    obj: ImageUpdateAutomation, checkout_ref: GitRepositoryRef | None
) -> tuple[str, bool]:
    """(push branch, switch branch?) as Flux's configurePush decides them.

    Raises InvalidSourceConfig when no branch can be inferred.
    """
    git = obj.spec.git
    assert git is not None
    push = git.push
    if push is not None and push.branch:
        checkout_branch = checkout_ref.branch if checkout_ref is not None else DEFAULT_BRANCH
        return push.branch, push.branch != checkout_branch
    if checkout_ref is None or not checkout_ref.branch:
        raise InvalidSourceConfig(
            "push spec not provided, and cannot be inferred from .spec.git.checkout.ref "
            "or GitRepository .spec.ref"
        )
    return checkout_ref.branch, False


async def git_source(store: ImageStore, obj: ImageUpdateAutomation) -> GitSource:
    """Gather the automation's Git configuration.

    Raises InvalidSourceConfig (stalls) for a spec that cannot work and
    SourceManagerFailed (retried) when the GitRepository or a Secret is missing.
    """
    spec = obj.spec
    if spec.source_ref.kind != "GitRepository":
        raise InvalidSourceConfig(f"source kind '{spec.source_ref.kind}' not supported")
    if spec.git is None:
        raise InvalidSourceConfig("source kind 'GitRepository' necessitates field .spec.git")
    namespace = spec.source_ref.namespace or obj.metadata.namespace
    name = spec.source_ref.name
    try:
        repo = await read_object(
            store, "GitRepository", namespace, name, GitRepository.model_validate
        )
    except ValueError as e:
        raise SourceManagerFailed(f"failed to get referenced git repository: {e}") from None
    if repo is None:
        raise SourceManagerFailed(
            f"failed configuring source manager: referenced git repository does not exist: "
            f"GitRepository '{namespace}/{name}' not found"
        )
    checkout_ref: GitRepositoryRef | None = (
        spec.git.checkout.ref if spec.git.checkout is not None else repo.spec.ref
    )
    if checkout_ref is not None and checkout_ref.is_empty:
        checkout_ref = None
    branch, switch = push_branch(obj, checkout_ref)
    auth = proxy = None
    try:
        if repo.spec.secret_ref is not None:
            data = await _secret(store, namespace, repo.spec.secret_ref.name, "spec.secretRef")
            auth = GitAuth.from_secret(data, name=repo.spec.secret_ref.name)
        if repo.spec.proxy_secret_ref is not None:
            ref = repo.spec.proxy_secret_ref
            data = await _secret(store, namespace, ref.name, "spec.proxySecretRef")
            proxy = GitProxy.from_secret(data, name=ref.name)
    except GitError as e:
        raise SourceManagerFailed(f"failed configuring source manager: {e.message}") from None
    commit = spec.git.commit
    signing_key = None
    if commit.signing_key is not None:
        key_name = commit.signing_key.secret_ref.name
        data = await _secret(
            store, obj.metadata.namespace, key_name, "spec.git.commit.signingKey.secretRef"
        )
        try:
            signing_key = SigningKey.from_secret(data, name=key_name)
        except (GitError, ValueError) as e:
            message = e.message if isinstance(e, GitError) else str(e)
            raise SourceManagerFailed(f"failed configuring source manager: {message}") from None
    return GitSource(
        repository=repo,
        url=repo.spec.url,
        auth=auth,
        proxy=proxy,
        timeout=repo.spec.timeout_seconds,
        checkout=checkout_for(checkout_ref or GitRepositoryRef(branch=DEFAULT_BRANCH)),
        checkout_branch=checkout_ref.branch if checkout_ref is not None else DEFAULT_BRANCH,
        push_branch=branch,
        switch_branch=switch,
        refspec=spec.git.push.refspec if spec.git.push is not None else None,
        author=CommitAuthor(name=commit.author.name or "", email=commit.author.email),
        signing_key=signing_key,
    )
