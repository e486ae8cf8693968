"""Helpers for the kustomize tests: small fixture repositories packed as artifacts."""

from __future__ import annotations

import hashlib
import io
import tarfile
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from fluxbus_kustomize.build import Builder, RenderCache

MemberHook = Callable[[tarfile.TarFile], None]


def pack(
    tar_path: Path, files: Mapping[str, str | bytes], *, extra: MemberHook | None = None
) -> tuple[Path, str]:
    """Write `files` (path → content; str is dedented) into a .tar.gz; return it and its digest."""
    with tarfile.open(tar_path, "w:gz") as tf:
        for name, content in sorted(files.items()):
            data = (
                textwrap.dedent(content).lstrip("\n").encode()
                if isinstance(content, str)
                else content
            )
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
        if extra is not None:
            extra(tf)
    return tar_path, "sha256:" + hashlib.sha256(tar_path.read_bytes()).hexdigest()


@pytest.fixture
def artifact(tmp_path: Path) -> Callable[..., tuple[Path, str]]:
    """Return `make(files, extra=None)` packing a fixture repository as an artifact."""
    counter = iter(range(1_000_000))

    def make(files: Mapping[str, str | bytes], extra: MemberHook | None = None) -> tuple[Path, str]:
        return pack(tmp_path / f"artifact-{next(counter)}.tar.gz", files, extra=extra)

    return make


@pytest.fixture
def builder(tmp_path: Path) -> Builder:
    """A Builder with its own render cache and temp dir (so leftovers are visible)."""
    work = tmp_path / "work"
    work.mkdir()
    return Builder(cache=RenderCache(), temp_dir=work)
