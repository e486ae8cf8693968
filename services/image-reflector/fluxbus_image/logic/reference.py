"""Container image names as image-reflector-controller reads `spec.image`.

Pure: no I/O.

Flux parses `spec.image` with go-containerregistry's `name.ParseReference` and
then refuses a scheme or a tag; fluxbus follows the same rules:

- The first path component is the registry when it contains `.` or `:`
  (`ghcr.io/org/app`, `localhost:5000/app`, `127.0.0.1:5000/a/b`); otherwise
  the whole name is a Docker Hub repository (`localhost/app` included, as in
  go-containerregistry).
- Docker Hub is `index.docker.io` (`docker.io` is rewritten to it) and a
  single-component repository gets `library/` (`alpine` →
  `index.docker.io/library/alpine`). The canonical name, which Flux reports
  as `status.canonicalImageName`, is `<registry>/<repository>`.
- Repository characters: `[a-z0-9_./-]`, 2 to 255 of them; the registry must
  be a URI authority (`host[:port]`).
- `https://…` is refused ("should not include URL scheme"), so is a tag
  ("should not include a tag") and a digest.

`ImageName.plain_http_fallback` is go-containerregistry's localhost heuristic:
for `localhost:<port>`, `*.localhost`, `127.0.0.1`, `::1` and RFC 1918
addresses (and for `spec.insecure`), a registry that does not answer https is
tried again over plain http.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from fluxbus_image.logic.errors import InvalidImageError

__all__ = ["DOCKER_HUB", "ImageName", "InvalidImageError", "parse_image"]

DOCKER_HUB = "index.docker.io"
"""go-containerregistry's DefaultRegistry: the Docker Hub API host."""
_DOCKER_HUB_ALIAS = "docker.io"
_REPOSITORY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-./"
_REPOSITORY_RE = re.compile(r"^[a-z0-9_./-]{2,255}$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_AUTHORITY_RE = re.compile(rf"^(?:{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?$")
_LOCAL_RE = re.compile(r"^(?:.*\.localhost|127\.0\.0\.1|\[::1\]|::1)(?::\d{1,5})?$")
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_DIGEST_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")


@dataclass(frozen=True)
class ImageName:
    """A repository in a registry: `registry` is the HTTP host[:port], `repository` the path."""

    registry: str
    repository: str
    canonical: str

    def __str__(self) -> str:
        return self.canonical

    @property
    def plain_http_fallback(self) -> bool:
        """True when go-containerregistry would try http after https for this registry."""
        host = self.registry
        if host.startswith("localhost:") or _LOCAL_RE.match(host):
            return True
        try:
            ip = ipaddress.ip_address(host.split(":")[0])
        except ValueError:
            return False
        return any(ip in net for net in _RFC1918)


def _bad(image: str, why: str) -> InvalidImageError:
    return InvalidImageError(f"invalid image '{image}': {why}")


def parse_image(image: str) -> ImageName:
    """Parse `spec.image` into its registry, repository and canonical name.

    Raises `InvalidImageError` (a `Stalling` error) naming the image when it has
    a scheme, a tag or a digest, or is not a valid repository name.
    """
    if "://" in image:
        scheme = image.split("://", 1)[0]
        raise InvalidImageError(
            f"image '{image}' should not include URL scheme; remove '{scheme}://'"
        )
    if not image:
        raise _bad(image, "a repository name must be specified")
    base, at, digest = image.partition("@")
    if at:
        if "@" in digest or not _DIGEST_RE.match(digest):
            raise _bad(image, "a digest must look like 'sha256:<hex>' after a single '@'")
        raise InvalidImageError(f"image '{image}' should not include a digest; remove '@{digest}'")
    _, colon, tail = base.rpartition(":")
    if colon and "/" not in tail:
        raise InvalidImageError(f"image '{image}' should not include a tag; remove ':{tail}'")
    registry, repository = "", base
    first, slash, rest = base.partition("/")
    if slash and ("." in first or ":" in first):
        registry, repository = first, rest
    if not _REPOSITORY_RE.match(repository):
        raise _bad(
            image,
            f"repository can only contain the characters `{_REPOSITORY_CHARS}` "
            f"and must be 2 to 255 long: {repository}",
        )
    if registry and not _AUTHORITY_RE.match(registry):
        raise _bad(image, f"registries must be valid RFC 3986 URI authorities: {registry}")
    if registry in ("", _DOCKER_HUB_ALIAS):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return ImageName(registry, repository, f"{registry}/{repository}")
