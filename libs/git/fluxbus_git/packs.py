"""Indexing a fetched pack and reading blobs from it without inflating a blob whole.

dulwich's own indexing inflates every object into memory (twice: once to
find the headers, once to hash it), and reading a blob materialises it, so a
fetch cost a multiple of the largest file. Here the pack's headers are
walked by streaming each zlib body through a decompressor that keeps
nothing, a whole (non-delta) blob is hashed the same way, and only deltas
and their bases (commits, trees, small similar files) go through dulwich's
in-memory resolution. A whole blob is read back the same way, one chunk at a
time, straight from the pack file.

Blocking: called only from `GitClient`'s worker thread.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from dulwich.object_store import DiskObjectStore
from dulwich.objects import Blob, ObjectID, RawObjectID, sha_to_hex
from dulwich.pack import (
    OFS_DELTA,
    REF_DELTA,
    Pack,
    PackIndexer,
    UnpackedObject,
    write_pack_index,
)

from fluxbus_git.session import Session

CHUNK = 1 << 16
"""Bytes read from the pack, and inflated, at a time: memory per object stays this size."""

_HEADER_MAX = 32
"""More than any pack object header: type/size varint, then an offset varint or a sha."""


class PackFormatError(Exception):
    """The received pack is truncated or malformed."""


@dataclass(frozen=True)
class Header:
    """One pack object's header: where it starts, its type in the pack and its size."""

    offset: int
    type_num: int
    size: int
    """Inflated size (of the delta itself, for a delta)."""
    delta_base: bytes | int | None
    """Relative offset (OFS_DELTA) or raw id (REF_DELTA) of the base."""
    data_offset: int
    """Where the zlib body starts."""


def _parse_header(f: IO[bytes], offset: int) -> Header:
    f.seek(offset)
    buf = f.read(_HEADER_MAX)
    if not buf:
        raise PackFormatError("truncated pack")
    i = 0
    byte = buf[i]
    type_num, size, shift = (byte >> 4) & 7, byte & 0x0F, 4
    while byte & 0x80:
        i += 1
        byte = buf[i]
        size |= (byte & 0x7F) << shift
        shift += 7
    i += 1
    base: bytes | int | None = None
    if type_num == OFS_DELTA:
        # Git's offset encoding: base-128 with an implicit +1 per continuation byte.
        byte = buf[i]
        i += 1
        rel = byte & 0x7F
        while byte & 0x80:
            byte = buf[i]
            i += 1
            rel = ((rel + 1) << 7) | (byte & 0x7F)
        base = rel
    elif type_num == REF_DELTA:
        base = buf[i : i + 20]
        i += 20
    return Header(offset, type_num, size, base, offset + i)


def _inflate(f: IO[bytes], start: int) -> Iterator[bytes]:
    """Yield the inflated pieces of the zlib body at `start`; leave `f` just after it."""
    f.seek(start)
    inflater = zlib.decompressobj()
    while not inflater.eof:
        chunk = f.read(CHUNK)
        if not chunk:
            raise PackFormatError("truncated pack")
        yield inflater.decompress(chunk, CHUNK)
        while inflater.unconsumed_tail and not inflater.eof:
            yield inflater.decompress(inflater.unconsumed_tail, CHUNK)
    f.seek(-len(inflater.unused_data), os.SEEK_CUR)


def _crc32(f: IO[bytes], start: int, end: int) -> int:
    """CRC-32 of the bytes [start, end) of `f` (what a pack index records per object)."""
    f.seek(start)
    crc = 0
    while start < end:
        chunk = f.read(min(CHUNK, end - start))
        if not chunk:
            raise PackFormatError("truncated pack")
        crc = zlib.crc32(chunk, crc)
        start += len(chunk)
    return crc


def walk_headers(f: IO[bytes], session: Session) -> Iterator[Header]:
    """Every object header of the pack in `f`, in pack order (inflating nothing whole)."""
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"PACK":
        raise PackFormatError("not a pack")
    offset = 12
    for _ in range(int.from_bytes(head[8:12], "big")):
        session.check()
        header = _parse_header(f, offset)
        yield header
        for _piece in _inflate(f, header.data_offset):
            pass
        offset = f.tell()


def verify_checksum(f: IO[bytes], session: Session) -> None:
    """Raise `PackFormatError` unless the pack's trailing SHA-1 matches its contents."""
    end = f.seek(0, os.SEEK_END)
    if end < 32:
        raise PackFormatError("truncated pack")
    f.seek(0)
    digest = hashlib.sha1(usedforsecurity=False)
    left = end - 20
    while left:
        session.check()
        chunk = f.read(min(CHUNK * 16, left))
        if not chunk:
            raise PackFormatError("truncated pack")
        digest.update(chunk)
        left -= len(chunk)
    if f.read(20) != digest.digest():
        raise PackFormatError("pack checksum mismatch")


class _StreamingIndexer(PackIndexer):
    """dulwich's indexer, except that a whole blob no delta is based on is hashed streaming."""

    def _resolve_object(
        self,
        offset: int,
        obj_type_num: int,
        base_chunks: bytes | list[bytes] | None,
    ) -> UnpackedObject:
        if (
            base_chunks is None
            and obj_type_num == Blob.type_num
            and offset not in self._pending_ofs
        ):
            assert self._file is not None
            header = _parse_header(self._file, offset)
            sha = self.hash_func()
            sha.update(b"blob %d\0" % header.size)
            for out in _inflate(self._file, header.data_offset):
                sha.update(out)
            crc = _crc32(self._file, offset, self._file.tell())
            if sha.digest() not in self._pending_ref:
                return UnpackedObject(
                    obj_type_num, crc32=crc, sha=sha.digest(), offset=offset, decomp_chunks=[]
                )
        return super()._resolve_object(offset, obj_type_num, base_chunks)


def new_pack_file(store: DiskObjectStore) -> tuple[BinaryIO, str]:
    """A new temp file in the store's pack directory to receive a pack, and its path."""
    fd, path = tempfile.mkstemp(dir=store.pack_dir, suffix=".pack")
    return os.fdopen(fd, "w+b"), path


def add_pack_file(store: DiskObjectStore, f: BinaryIO, path: str, session: Session) -> None:
    """Index the pack received in `f` (at `path`) and move it into `store` (closes `f`).

    Raises `PackFormatError` for a truncated or corrupt pack, and what dulwich
    raises for unresolvable deltas.
    """
    verify_checksum(f, session)
    indexer = _StreamingIndexer(
        f,
        store.object_format.hash_func,
        resolve_ext_ref=store.get_raw,
        object_format=store.object_format,
    )
    whole_blobs: set[int] = set()
    for header in walk_headers(f, session):
        if header.type_num == Blob.type_num:
            whole_blobs.add(header.offset)
        indexer.record(
            UnpackedObject(header.type_num, delta_base=header.delta_base, offset=header.offset)
        )
    entries = []
    for entry in indexer:
        session.check()
        entries.append(entry)
    ext_refs = set(indexer.ext_refs())
    if ext_refs:
        # A thin pack (never sent to an empty store): dulwich appends the bases itself.
        store._complete_pack(f, path, entries, ext_refs)
        return
    f.seek(-20, os.SEEK_END)
    pack_sha = f.read(20)
    f.close()
    # dulwich's completion would re-inflate every object to validate it; only the
    # objects that are not whole blobs (commits, trees, tags, deltas) need parsing.
    entries.sort()
    base = store._get_pack_basepath(entries)
    os.rename(path, base + ".pack")
    with open(base + ".idx", "wb") as index_file:
        write_pack_index(index_file, entries, pack_sha)
    pack = Pack(base, object_format=store.object_format)
    try:
        pack.check_length_and_checksum()
        for sha, offset, _crc in entries:
            session.check()
            if offset not in whole_blobs:
                pack[ObjectID(sha_to_hex(RawObjectID(sha)))]
    except BaseException:
        pack.close()
        raise
    store._add_cached_pack(os.path.basename(base), pack)


def whole_blob(store: DiskObjectStore, sha: ObjectID) -> tuple[Path, Header] | None:
    """Where blob `sha` lies whole (not as a delta) in a pack of `store`, or None."""
    for pack in store.packs:
        try:
            offset = pack.index.object_offset(sha)
        except KeyError:
            continue
        pack_path = Path(pack._data_path)
        with pack_path.open("rb") as f:
            header = _parse_header(f, offset)
        if header.type_num == Blob.type_num:
            return pack_path, header
        return None
    return None


def blob_chunks(pack_path: Path, header: Header) -> Iterator[bytes]:
    """The inflated contents of the whole blob at `header` in `pack_path`, chunk by chunk."""
    with pack_path.open("rb") as f:
        for out in _inflate(f, header.data_offset):
            if out:
                yield out
