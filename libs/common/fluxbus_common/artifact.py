"""The artifact format, owned once: build, digest, verify and safely extract a `tar.gz`.

The source service builds artifacts and the kustomize service (and the
source's `spec.include`) extracts them. Both go through this module with the
same `ArtifactLimits`, so an artifact the consumer would refuse is refused
when it is built, not published and downloaded again on every retry.

Format: a gzip (mtime 0, no file name, level `GZIP_LEVEL`) of a PAX tar of
regular files only, sorted by path, mtime 0, uid/gid 0, empty user/group
names, modes 0644 / 0755. The same files always give the same bytes and so
the same sha256 (on one zlib build: another zlib may compress differently;
the digest is of the compressed bytes, as in Flux).

Extraction writes only regular files and directories, and refuses the whole
artifact on a NUL byte in a name, an absolute or `..` path, a link (symbolic
or hard), a device or FIFO, a member named twice (files are created with
`O_EXCL | O_NOFOLLOW`), a truncated member, and anything over the limits.

Every function here blocks (tarfile, hashing, file I/O): adapters call them
through `asyncio.to_thread`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import posixpath
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fluxbus_common.settings import EnvVar

__all__ = [
    "GZIP_LEVEL",
    "ArtifactFile",
    "ArtifactFormatError",
    "ArtifactLimits",
    "copy_verified",
    "extract",
    "file_sha256",
    "list_files",
    "normalise_digest",
    "verify",
    "write_tarball",
]

GZIP_LEVEL = 6
"""zlib's default: within a few per cent of level 9 on manifests, several times faster."""

_CHUNK = 1 << 16
"""Read/write size: large enough to amortise system calls, small enough to stay in cache."""

MAX_MEMBERS_ENV = "FLUXBUS_ARTIFACT_MAX_MEMBERS"
MAX_TOTAL_BYTES_ENV = "FLUXBUS_ARTIFACT_MAX_BYTES"


class ArtifactFormatError(Exception):
    """The file is not an acceptable artifact: wrong digest, not a tarball, an unsafe
    member, or over the `ArtifactLimits`. Services wrap it in their typed reconcile
    error (with their own condition reason)."""


@dataclass(frozen=True)
class ArtifactLimits:
    """What one artifact may hold; the builder and every extractor enforce the same."""

    max_members: int = 50_000
    """Members of the tarball (directories included when extracting; the builder writes
    regular files only). Larger than any sane manifest repository."""
    max_total_bytes: int = 512 * 1024 * 1024
    """Uncompressed size of all files: larger than any sane manifest repository, small
    enough that a tar bomb cannot fill the disk."""

    def __post_init__(self) -> None:
        if self.max_members < 1 or self.max_total_bytes < 1:
            raise ValueError(f"artifact limits must be positive: {self}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ArtifactLimits:
        """Return the limits from FLUXBUS_ARTIFACT_MAX_MEMBERS and FLUXBUS_ARTIFACT_MAX_BYTES
        (the defaults when unset). Set them alike for the source and kustomize services.
        Raises ValueError naming the variable for a value that is not a positive integer."""
        e = os.environ if env is None else env
        values: dict[str, int] = {}
        for field, name in (
            ("max_members", MAX_MEMBERS_ENV),
            ("max_total_bytes", MAX_TOTAL_BYTES_ENV),
        ):
            raw = (e.get(name) or "").strip()
            if not raw:
                continue
            try:
                values[field] = int(raw)
            except ValueError:
                raise ValueError(f"{name}: not an integer: {raw!r}") from None
            if values[field] < 1:
                raise ValueError(f"{name}: must be positive: {raw!r}")
        return cls(**values)


@dataclass(frozen=True)
class ArtifactFile:
    """A built archive: where it is, its sha256 (hex), its size in bytes and file count."""

    path: Path
    sha256: str
    size: int
    files: int

    @property
    def digest(self) -> str:
        """Flux's `status.artifact.digest` form: `sha256:<hex>`."""
        return f"sha256:{self.sha256}"


# --------------------------------------------------------------------------- building


class _HashingWriter(io.RawIOBase):
    """A write-only file that hashes and counts what passes through to `raw`."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]  # gzip hands bytes, never a buffer
        self.sha.update(b)
        self.size += len(b)
        return self.raw.write(b)


def list_files(root: Path | str) -> list[tuple[str, Path]]:
    """Return every regular file under `root` as `(relative POSIX path, path)`, sorted by
    relative path. Symlinks, special files and `.git` directories are left out (as
    source-controller does). Raises OSError when the tree cannot be read."""
    files: list[tuple[str, Path]] = []

    def visit(directory: Path, rel: str) -> None:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            relpath = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name != ".git":
                    visit(Path(entry.path), relpath)
            elif entry.is_file(follow_symlinks=False):
                files.append((relpath, Path(entry.path)))

    visit(Path(root), "")
    files.sort(key=lambda f: f[0])
    return files


def _check_limits(files: Sequence[tuple[str, int]], limits: ArtifactLimits) -> None:
    """Refuse files an extractor would refuse, with the extractor's own words."""
    if len(files) > limits.max_members:
        raise ArtifactFormatError(
            f"artifact: {len(files)} files; more than {limits.max_members} members "
            "(file count limit)"
        )
    total = 0
    for rel, size in files:
        total += size
        if total > limits.max_total_bytes:
            raise ArtifactFormatError(
                f"artifact: member {rel!r} exceeds the size limit of {limits.max_total_bytes} bytes"
            )


def write_tarball(
    files: Sequence[tuple[str, Path]], out_path: Path | str, limits: ArtifactLimits
) -> ArtifactFile:
    """Write `files` (`(relative POSIX path, source path)`, in the given order: pass them
    sorted, as `list_files` returns them) as a deterministic `tar.gz` at `out_path`.

    Returns the `ArtifactFile`. Raises ArtifactFormatError, before writing anything,
    when the files exceed `limits`; OSError when a file cannot be read or written.
    """
    out = Path(out_path)
    sized = [(rel, path, path.stat()) for rel, path in files]
    _check_limits([(rel, st.st_size) for rel, _, st in sized], limits)
    with open(out, "wb") as raw:
        hasher = _HashingWriter(raw)
        with (
            gzip.GzipFile(
                filename="", mode="wb", fileobj=hasher, mtime=0, compresslevel=GZIP_LEVEL
            ) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for rel, path, st in sized:
                info = tarfile.TarInfo(rel)
                info.size = st.st_size
                info.mode = 0o755 if st.st_mode & 0o111 else 0o644
                info.mtime = 0
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.type = tarfile.REGTYPE
                with open(path, "rb") as f:
                    tar.addfile(info, f)
    return ArtifactFile(out, hasher.sha.hexdigest(), hasher.size, len(sized))


# --------------------------------------------------------------------------- digests


def file_sha256(path: Path | str) -> str:
    """Return the hex sha256 of a file. Raises OSError when it cannot be read."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def normalise_digest(digest: str) -> str:
    """Return `sha256:<hex>` for `sha256:<hex>` or a bare hex digest."""
    digest = digest.strip().lower()
    return digest if ":" in digest else f"sha256:{digest}"


def _expected_sha256(digest: str) -> str:
    algo, _, expected = normalise_digest(digest).partition(":")
    if algo != "sha256":
        raise ArtifactFormatError(f"artifact digest {digest!r}: unsupported algorithm {algo!r}")
    return expected


def _check_digest(name: str, expected: str, actual: str) -> None:
    if actual != expected:
        raise ArtifactFormatError(
            f"artifact {name}: digest mismatch: expected sha256:{expected}, got sha256:{actual}"
        )


def verify(path: Path | str, digest: str) -> None:
    """Check that the file at `path` has `digest` (`sha256:<hex>` or bare hex).
    Raises ArtifactFormatError on a mismatch, an unknown algorithm or a read error."""
    p = Path(path)
    expected = _expected_sha256(digest)
    try:
        actual = file_sha256(p)
    except OSError as e:
        raise ArtifactFormatError(f"artifact {p.name}: {e.strerror or e}") from e
    _check_digest(p.name, expected, actual)


def copy_verified(source: Path | str, target: Path | str, digest: str) -> None:
    """Copy an artifact to `target` (which must not exist), checking `digest` on the way.

    Extracting from the verified copy means a file swapped after the check cannot be
    extracted. Raises ArtifactFormatError on a mismatch, an unknown algorithm or an
    I/O error (the copy is then left for the caller's work dir cleanup).
    """
    src = Path(source)
    expected = _expected_sha256(digest)
    h = hashlib.sha256()
    try:
        with src.open("rb") as fin, Path(target).open("xb") as fout:
            while chunk := fin.read(_CHUNK):
                h.update(chunk)
                fout.write(chunk)
    except OSError as e:
        raise ArtifactFormatError(f"artifact {src.name}: {e.strerror or e}") from e
    _check_digest(src.name, expected, h.hexdigest())


# --------------------------------------------------------------------------- extraction


def _safe_member_path(name: str) -> str:
    """Return the normalised relative path of a member (`.` for the root), or raise."""
    if "\x00" in name:
        raise ArtifactFormatError(f"artifact: member {name!r} has a NUL byte in its name")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ArtifactFormatError(f"artifact: member {name!r} has an absolute path")
    if ".." in name.replace("\\", "/").split("/"):
        raise ArtifactFormatError(f"artifact: member {name!r} points outside the artifact root")
    norm = posixpath.normpath(name)
    if norm in (".", ""):
        return "."
    if norm == ".." or norm.startswith("../"):
        raise ArtifactFormatError(f"artifact: member {name!r} points outside the artifact root")
    return norm


def extract(artifact: Path | str, dest: Path | str, limits: ArtifactLimits) -> int:
    """Extract the regular files and directories of an artifact into `dest`, within
    `limits`; return the number of files written.

    Directories are created 0700, files 0600 (0700 when the member is executable), so
    the tree stays private to the service. Raises ArtifactFormatError on anything
    unsafe or over the limits (files already written stay: extract into a fresh
    directory and remove it on failure); OSError on a write error.
    """
    root = Path(dest)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    total = 0
    count = 0
    files = 0
    try:
        with tarfile.open(artifact, mode="r:*") as tf:
            for member in tf:
                count += 1
                if count > limits.max_members:
                    raise ArtifactFormatError(
                        f"artifact: more than {limits.max_members} members (file count limit)"
                    )
                rel = _safe_member_path(member.name)
                if member.issym() or member.islnk():
                    raise ArtifactFormatError(
                        f"artifact: member {member.name!r} is a link to {member.linkname!r}; "
                        "links are not allowed"
                    )
                if member.isdir():
                    if rel != ".":
                        (root / rel).mkdir(mode=0o700, parents=True, exist_ok=True)
                    continue
                if not member.isreg():
                    raise ArtifactFormatError(
                        f"artifact: member {member.name!r} is not a regular file or directory"
                    )
                total += member.size
                if total > limits.max_total_bytes:
                    raise ArtifactFormatError(
                        f"artifact: member {member.name!r} exceeds the size limit of "
                        f"{limits.max_total_bytes} bytes"
                    )
                _write_member(tf, member, root / rel)
                files += 1
    except tarfile.TarError as e:
        raise ArtifactFormatError(f"artifact: not a valid tarball: {e}") from e
    return files


def _write_member(tf: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    source = tf.extractfile(member)
    if source is None:  # pragma: no cover - isreg() members always have data
        raise ArtifactFormatError(f"artifact: member {member.name!r} has no data")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    # the executable bit survives (an included artifact's scripts stay executable)
    mode = 0o700 if member.mode & 0o111 else 0o600
    try:
        fd = os.open(target, flags, mode)
    except FileExistsError:
        raise ArtifactFormatError(f"artifact: member {member.name!r} appears twice") from None
    remaining = member.size
    with source, os.fdopen(fd, "wb") as out:
        while remaining > 0:
            chunk = source.read(min(_CHUNK, remaining))
            if not chunk:
                raise ArtifactFormatError(f"artifact: member {member.name!r} is truncated")
            out.write(chunk)
            remaining -= len(chunk)


ARTIFACT_ENV: tuple[EnvVar, ...] = (
    EnvVar(MAX_MEMBERS_ENV, str(ArtifactLimits.max_members), "files one artifact may hold"),
    EnvVar(
        MAX_TOTAL_BYTES_ENV,
        str(ArtifactLimits.max_total_bytes),
        "uncompressed bytes one artifact may hold (set alike on source and kustomize)",
    ),
)
"""The artifact limits as `--help` of the source and kustomize services lists them."""
