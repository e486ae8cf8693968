"""A fetched pack is indexed from disk and its blobs read back chunk by chunk;
a truncated or corrupted pack is refused with a clear error, never half-stored."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from dulwich.object_store import DiskObjectStore
from dulwich.objects import ObjectID

from fluxbus_git.packs import PackFormatError, add_pack_file, blob_chunks, new_pack_file, whole_blob
from fluxbus_git.session import Session


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def pack(tmp_path: Path) -> tuple[bytes, dict[str, bytes]]:
    """A real pack (git pack-objects) of a small repository, and its blobs by sha."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    files = {
        "big.bin": os.urandom(300_000),
        "a.yaml": b"kind: ConfigMap\n" * 50,
        "b.yaml": b"kind: ConfigMap\n" * 50 + b"extra: 1\n",  # likely a delta of a.yaml
    }
    for name, data in files.items():
        (repo / name).write_bytes(data)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    blobs = {git(repo, "hash-object", name): data for name, data in files.items()}
    objects = git(repo, "rev-list", "--objects", "--all")
    packed = subprocess.run(
        ["git", "pack-objects", "--stdout"],
        cwd=repo,
        input="\n".join(line.split()[0] for line in objects.splitlines()).encode(),
        check=True,
        capture_output=True,
    ).stdout
    return packed, blobs


@contextlib.contextmanager
def store_with(tmp_path: Path, data: bytes) -> Iterator[DiskObjectStore]:
    """An on-disk object store holding the pack `data` (closed after the block)."""
    store = DiskObjectStore.init(str(tmp_path / "objects"))
    try:
        f, path = new_pack_file(store)
        f.write(data)
        f.flush()
        try:
            add_pack_file(store, f, path, Session())
        except BaseException:
            f.close()  # what GitClient's fetch does on failure
            raise
        yield store
    finally:
        store.close()


def test_a_pack_is_indexed_and_every_blob_reads_back_whole(
    tmp_path: Path, pack: tuple[bytes, dict[str, bytes]]
):
    data, blobs = pack
    with store_with(tmp_path, data) as store:
        streamed = 0
        for sha, content in blobs.items():
            found = whole_blob(store, ObjectID(sha.encode()))
            if found is not None:  # stored whole: streamed from the pack
                assert b"".join(blob_chunks(*found)) == content
                streamed += 1
            assert store[ObjectID(sha.encode())].as_raw_string() == content
        assert streamed >= 1  # at least the random file cannot be a delta


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda d: d[: len(d) // 2], id="truncated"),
        pytest.param(lambda d: d[:100] + bytes([d[100] ^ 0xFF]) + d[101:], id="flipped-byte"),
        pytest.param(lambda d: b"JUNK" + d[4:], id="not-a-pack"),
    ],
)
def test_a_damaged_pack_is_refused_and_nothing_is_stored(
    tmp_path: Path, pack: tuple[bytes, dict[str, bytes]], damage
):
    data, blobs = pack
    with pytest.raises(PackFormatError), store_with(tmp_path, damage(data)):
        pass
    store = DiskObjectStore(str(tmp_path / "objects"))
    try:
        assert not any(ObjectID(sha.encode()) in store for sha in blobs)
    finally:
        store.close()
