"""The one artifact format: limits from the environment, digest checks, and
extraction that keeps the tree private but the executable bit."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fluxbus_common.artifact import (
    ArtifactFormatError,
    ArtifactLimits,
    copy_verified,
    extract,
    list_files,
    verify,
    write_tarball,
)


def tree(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "a.yaml").write_text("a: 1\n")
    (root / "bin/run.sh").write_text("#!/bin/sh\n")
    os.chmod(root / "bin/run.sh", 0o755)
    return root


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param({"FLUXBUS_ARTIFACT_MAX_MEMBERS": "many"}, "not an integer", id="word"),
        pytest.param({"FLUXBUS_ARTIFACT_MAX_BYTES": "0"}, "must be positive", id="zero"),
    ],
)
def test_a_bad_limit_setting_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=f"{next(iter(env))}: {message}"):
        ArtifactLimits.from_env(env)


def test_a_verified_copy_extracts_privately_keeping_the_executable_bit(tmp_path: Path) -> None:
    art = write_tarball(list_files(tree(tmp_path / "src")), tmp_path / "a.tar.gz", ArtifactLimits())
    verify(art.path, art.digest)
    verify(art.path, art.sha256)  # a bare hex digest is accepted
    copy_verified(art.path, tmp_path / "copy.tar.gz", art.digest)
    assert extract(tmp_path / "copy.tar.gz", tmp_path / "out", ArtifactLimits()) == 2
    assert stat.S_IMODE((tmp_path / "out/bin").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "out/a.yaml").stat().st_mode) == 0o600
    assert (tmp_path / "out/bin/run.sh").stat().st_mode & 0o100


def test_a_digest_mismatch_is_refused_and_names_both_digests(tmp_path: Path) -> None:
    art = write_tarball(list_files(tree(tmp_path / "src")), tmp_path / "a.tar.gz", ArtifactLimits())
    wrong = "sha256:" + "0" * 64
    with pytest.raises(ArtifactFormatError, match=f"expected {wrong}, got {art.digest}"):
        verify(art.path, wrong)
    with pytest.raises(ArtifactFormatError, match="digest mismatch"):
        copy_verified(art.path, tmp_path / "copy.tar.gz", wrong)
    with pytest.raises(ArtifactFormatError, match="unsupported algorithm 'md5'"):
        verify(art.path, "md5:abc")
