"""Every render is bounded (issue #11, "Safety"): a YAML bomb in the repository is
refused before kustomize reads it, naming the file and the limit; kustomize itself
runs under a memory limit and is stopped as soon as its output passes the cap; a
killed render names the limit or the signal; the service's own YAML reads and
post-build substitution are bounded alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fluxbus_common.safeyaml import YamlLimits
from fluxbus_kustomize.build import Builder, BuildError, BuildLimits, BuildSpec, RenderCache

Artifact = Callable[..., tuple[Path, str]]

LAUGHS = "\n".join(
    [
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata:",
        "  name: lol",
        "data:",
        '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"  {n}: &{n} [{','.join([f'*{p}'] * 9)}]"
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "",
    ]
)
"""The issue's bomb: 9 nested anchors × 9 aliases, ~450 bytes, 9⁹ strings expanded
(kustomize grew to 4 GB on it)."""

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
NO_PRESCAN = YamlLimits(max_alias_nodes=10**15)
"""Lets the bomb reach kustomize, to show the memory limit holds on its own."""


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "kubectl"
    path.write_text(body)
    path.chmod(0o755)
    return str(path)


def limited(tmp_path: Path, **limits: object) -> Builder:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    kubectl = limits.pop("kubectl", None)
    return Builder(
        kubectl=kubectl,  # type: ignore[arg-type]
        cache=RenderCache(),
        limits=BuildLimits(**limits),  # type: ignore[arg-type]
        temp_dir=work,
    )


@pytest.mark.parametrize(
    ("files", "path", "named"),
    [
        pytest.param(
            {"apps/kustomization.yaml": "resources: [bomb.yaml]\n", "apps/bomb.yaml": LAUGHS},
            "apps",
            "apps/bomb.yaml",
            id="a-resource",
        ),
        pytest.param(
            {"apps/bomb.yaml": LAUGHS},
            "apps",
            "apps/bomb.yaml",
            id="a-directory-without-kustomization",
        ),
        pytest.param(
            {
                "apps/kustomization.yaml": "resources: [../base]\n",
                "base/kustomization.yaml": "resources: [cm.txt]\n",
                "base/cm.txt": LAUGHS,
            },
            "apps",
            "base/cm.txt",
            id="a-base-file-of-any-name",
        ),
        pytest.param(
            {"kustomization.yaml": "resources: [cm.yaml]\nx: " + LAUGHS.split("\ndata:")[1]},
            "",
            "kustomization.yaml",
            id="the-kustomization-itself",
        ),
    ],
)
async def test_a_yaml_bomb_is_refused_before_kustomize_reads_it(
    artifact: Artifact, builder: Builder, files: dict[str, str], path: str, named: str
) -> None:
    assert 380 < len(LAUGHS.encode()) < 460
    tar, digest = artifact({"cm.yaml": CM, **files})
    with pytest.raises(BuildError) as info:
        await builder.build(tar, digest, BuildSpec(path=path))
    assert f"{named}: line " in info.value.message
    assert "aliases expand to more than 10000 nodes (alias expansion limit)" in info.value.message
    assert info.value.reason == "BuildFailed"
    assert builder.renders == 0  # kustomize never started
    assert list((builder.temp_dir or Path()).iterdir()) == []


async def test_a_bomb_kustomize_does_not_read_does_not_block_the_build(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact({"app/cm.yaml": CM, "other/bomb.yaml": LAUGHS})
    [obj] = await builder.build(tar, digest, BuildSpec(path="app"))
    assert obj["metadata"]["name"] == "a"


async def test_kustomize_is_killed_at_the_memory_limit_naming_it(
    artifact: Artifact, tmp_path: Path
) -> None:
    builder = limited(tmp_path, memory_bytes=256 << 20, yaml=NO_PRESCAN)
    tar, digest = artifact({"kustomization.yaml": "resources: [bomb.yaml]\n", "bomb.yaml": LAUGHS})
    with pytest.raises(BuildError) as info:
        await builder.build(tar, digest, BuildSpec())
    message = info.value.message
    assert message.startswith(
        "kustomize build killed at the memory limit of 256MiB (FLUXBUS_RENDER_MEMORY): "
    )
    assert len(message) < 300  # the goroutine dump is not in the status


async def test_the_memory_limit_leaves_ordinary_renders_alone(
    artifact: Artifact, tmp_path: Path
) -> None:
    builder = limited(tmp_path, memory_bytes=256 << 20)
    tar, digest = artifact({"kustomization.yaml": "resources: [cm.yaml]\n", "cm.yaml": CM})
    assert [o["metadata"]["name"] for o in await builder.build(tar, digest, BuildSpec())] == ["a"]


async def test_an_endless_output_is_cut_at_the_cap_without_waiting_for_its_end(
    artifact: Artifact, tmp_path: Path
) -> None:
    # `yes` never ends: buffering all of stdout first would run into the timeout instead
    endless = script(tmp_path, "#!/bin/sh\nexec yes 'data: {a: b}'\n")
    builder = limited(tmp_path, kubectl=endless, max_output_bytes=1 << 20, timeout=60.0)
    tar, digest = artifact({"cm.yaml": CM})
    with pytest.raises(BuildError) as info:
        await builder.build(tar, digest, BuildSpec())
    assert info.value.message == (
        "kustomize build stopped: its output exceeds the limit of 1MiB (FLUXBUS_RENDER_MAX_OUTPUT)"
    )


async def test_a_render_killed_by_a_signal_names_it(artifact: Artifact, tmp_path: Path) -> None:
    killed = script(tmp_path, "#!/bin/sh\necho partial >&2\nkill -KILL $$\n")
    builder = limited(tmp_path, kubectl=killed)
    tar, digest = artifact({"cm.yaml": CM})
    with pytest.raises(BuildError, match=r"^kustomize build killed by SIGKILL: partial$"):
        await builder.build(tar, digest, BuildSpec())


async def test_a_bomb_in_kustomize_output_is_refused_by_the_services_own_parser(
    artifact: Artifact, tmp_path: Path
) -> None:
    printer = script(tmp_path, "#!/bin/sh\ncat <<'EOF'\n" + LAUGHS + "EOF\n")
    builder = limited(tmp_path, kubectl=printer)
    tar, digest = artifact({"cm.yaml": CM})
    with pytest.raises(BuildError, match=r"^kustomize output refused: line \d+: .*alias expansion"):
        await builder.build(tar, digest, BuildSpec())


@pytest.mark.parametrize(
    ("variables", "text", "limit"),
    [
        pytest.param(
            {"big": "x" * 100_000},
            "data:\n" + "".join(f"  k{i}: ${{big}}\n" for i in range(50)),
            "substitution output limit",
            id="a-value-repeated",
        ),
        pytest.param(
            {"a": "a" * 1000, "b": "b" * 1000},
            "data:\n  k: ${a//a/${b//b/${a//a/x}}}\n",
            "substitution output limit",
            id="nested-replacements-multiply",
        ),
        pytest.param(
            {"a": "1"},
            "data:\n  k: " + "${a:=" * 100 + "}" * 100 + "\n",
            "nesting limit",
            id="deep-nesting",
        ),
        pytest.param(
            {"a": "[" * 300 + "]" * 300},
            "data:\n  k: ${a}\n",
            "YAML depth limit",
            id="a-value-nesting-yaml",
        ),
    ],
)
async def test_a_substitution_bomb_is_refused_naming_the_limit(
    artifact: Artifact,
    tmp_path: Path,
    variables: dict[str, str],
    text: str,
    limit: str,
) -> None:
    builder = limited(tmp_path, max_output_bytes=4 << 20)
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n" + text
    tar, digest = artifact({"cm.yaml": manifest})
    spec = BuildSpec(post_build=True, substitute=variables)
    with pytest.raises(BuildError) as info:
        await builder.build(tar, digest, spec)
    assert info.value.message.startswith("ConfigMap/s: ")
    assert f"({limit})" in info.value.message
    assert info.value.reason == "BuildFailed"  # Flux: a failed substitution is a BuildFailed


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, BuildLimits(), id="defaults"),
        pytest.param(
            {"FLUXBUS_RENDER_MEMORY": "512Mi", "FLUXBUS_RENDER_MAX_OUTPUT": "64Mi"},
            BuildLimits(memory_bytes=512 << 20, max_output_bytes=64 << 20),
            id="binary-suffixes",
        ),
        pytest.param(
            {"FLUXBUS_RENDER_MEMORY": "0", "FLUXBUS_RENDER_TIMEOUT": "30"},
            BuildLimits(memory_bytes=None, timeout=30.0),
            id="zero-lifts-the-memory-limit",
        ),
    ],
)
def test_render_limits_come_from_the_environment(
    env: dict[str, str], expected: BuildLimits
) -> None:
    assert BuildLimits.from_env(env) == expected
    assert BuildLimits().memory_bytes == 1 << 30


def test_a_malformed_limit_names_its_variable() -> None:
    with pytest.raises(ValueError, match="FLUXBUS_RENDER_MEMORY: not a byte count: 'lots'"):
        BuildLimits.from_env({"FLUXBUS_RENDER_MEMORY": "lots"})
