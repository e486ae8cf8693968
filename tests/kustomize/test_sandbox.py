"""The sandbox check: every reference a kustomization makes stays inside the
artifact root, nothing is fetched remotely and only builtin plugins load."""

from __future__ import annotations

import pytest

from fluxbus_kustomize.logic.sandbox import (
    check_kustomization,
    check_plugin_config,
    is_remote,
    resolve,
)


@pytest.mark.parametrize(
    ("kdir", "ref", "expected"),
    [
        pytest.param(".", "deploy.yaml", "deploy.yaml", id="sibling"),
        pytest.param("apps/prod", "../../base", "base", id="up-to-the-root"),
        pytest.param("apps/prod", "./x/../y.yaml", "apps/prod/y.yaml", id="normalised"),
        pytest.param("apps/prod", "../../../etc/passwd", None, id="above-the-root"),
        pytest.param(".", "..", None, id="parent-of-the-root"),
        pytest.param(".", "/etc/passwd", None, id="absolute"),
    ],
)
def test_references_resolve_relative_to_the_kustomization_directory(
    kdir: str, ref: str, expected: str | None
) -> None:
    assert resolve(kdir, ref) == expected


@pytest.mark.parametrize(
    "ref",
    [
        pytest.param("https://example.com/app.yaml", id="https"),
        pytest.param("http://example.com/app.yaml", id="http"),
        pytest.param("ssh://git@example.com/org/repo.git", id="ssh"),
        pytest.param("git::https://example.com/org/repo", id="git-getter"),
        pytest.param("github.com/org/repo//deploy?ref=v1", id="github-shorthand"),
        pytest.param("git@github.com:org/repo.git", id="scp-like"),
        pytest.param("file:///etc", id="file-url"),
        pytest.param("repo//deploy?ref=main", id="ref-query"),
    ],
)
def test_remote_references_are_recognised(ref: str) -> None:
    assert is_remote(ref)


@pytest.mark.parametrize(
    "ref",
    [
        pytest.param("../base", id="relative"),
        pytest.param("deploy.yaml", id="file"),
        pytest.param("github/deploy.yaml", id="directory-named-like-a-host"),
    ],
)
def test_local_references_are_not_remote(ref: str) -> None:
    assert not is_remote(ref)


FIELDS = [
    pytest.param({"resources": ["../../x"]}, "resources[0]", id="resources"),
    pytest.param({"bases": ["../../x"]}, "bases[0]", id="bases"),
    pytest.param({"components": ["../../x"]}, "components[0]", id="components"),
    pytest.param({"crds": ["../../x.yaml"]}, "crds[0]", id="crds"),
    pytest.param({"configurations": ["../../x.yaml"]}, "configurations[0]", id="configurations"),
    pytest.param({"transformers": ["../../x.yaml"]}, "transformers[0]", id="transformers"),
    pytest.param({"generators": ["../../x.yaml"]}, "generators[0]", id="generators"),
    pytest.param({"validators": ["../../x.yaml"]}, "validators[0]", id="validators"),
    pytest.param({"patches": [{"path": "../../x.yaml"}]}, "patches[0].path", id="patches"),
    pytest.param(
        {"patchesStrategicMerge": ["../../x.yaml"]}, "patchesStrategicMerge[0]", id="patches-sm"
    ),
    pytest.param(
        {"patchesJson6902": [{"path": "../../x.yaml", "target": {}}]},
        "patchesJson6902[0].path",
        id="patches-json6902",
    ),
    pytest.param(
        {"configMapGenerator": [{"name": "a", "files": ["k=../../x"]}]},
        "configMapGenerator[0].files[0]",
        id="configmap-files",
    ),
    pytest.param(
        {"secretGenerator": [{"name": "a", "envs": ["../../x.env"]}]},
        "secretGenerator[0].envs[0]",
        id="secret-envs",
    ),
    pytest.param(
        {"configMapGenerator": [{"name": "a", "env": "../../x.env"}]},
        "configMapGenerator[0].env",
        id="configmap-env",
    ),
    pytest.param(
        {"replacements": [{"path": "../../x.yaml"}]}, "replacements[0].path", id="replacements"
    ),
    pytest.param({"openapi": {"path": "../../schema.json"}}, "openapi.path", id="openapi"),
]


@pytest.mark.parametrize(("kustomization", "where"), FIELDS)
def test_every_path_field_is_checked(kustomization: dict, where: str) -> None:
    report = check_kustomization(kustomization, "apps/kustomization.yaml")
    assert len(report.errors) == 1
    assert report.errors[0].startswith(f"apps/kustomization.yaml: {where}: '../../")
    assert report.errors[0].endswith("points outside the artifact root")


def test_a_kustomization_inside_the_root_passes_and_lists_what_to_follow() -> None:
    report = check_kustomization(
        {
            "resources": ["../../base", "deploy.yaml"],
            "components": ["../../components/tls"],
            "transformers": ["labels.yaml"],
            "patchesStrategicMerge": ["apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"],
        },
        "apps/prod/kustomization.yaml",
    )
    assert report.errors == []
    assert [r.resolved for r in report.follow] == [
        "base",
        "apps/prod/deploy.yaml",
        "components/tls",
    ]
    assert [r.resolved for r in report.plugin_paths] == ["apps/prod/labels.yaml"]


def test_helm_charts_are_rejected() -> None:
    report = check_kustomization({"helmCharts": [{"name": "x"}]}, "kustomization.yaml")
    assert report.errors == ["kustomization.yaml: helmCharts: Helm chart inflation is not allowed"]


def test_a_remote_base_is_rejected_naming_it() -> None:
    report = check_kustomization(
        {"resources": ["github.com/org/repo//base?ref=v1"]}, "kustomization.yaml"
    )
    assert report.errors == [
        "kustomization.yaml: resources[0]: 'github.com/org/repo//base?ref=v1' "
        "is a remote reference, not allowed"
    ]


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(
            "apiVersion: builtin\nkind: LabelTransformer\nmetadata: {name: x}\nlabels: {a: b}\n",
            id="label-transformer",
        ),
        pytest.param(
            "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: x}\npath: patch.yaml\n",
            id="patch-transformer-inside",
        ),
        pytest.param(
            "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata: {name: x}\nfiles: [a.txt]\n",
            id="configmap-generator",
        ),
    ],
)
def test_builtin_plugin_configs_are_allowed(config: str) -> None:
    assert check_plugin_config("apps/t.yaml", config, "apps") == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param(
            "apiVersion: someteam.example.com/v1\nkind: SopsDecrypt\nmetadata: {name: x}\n",
            "someteam.example.com/v1/SopsDecrypt is not a builtin kustomize plugin",
            id="exec-or-go-plugin",
        ),
        pytest.param(
            "apiVersion: example.com/v1\nkind: Fn\nmetadata:\n  name: x\n  annotations:\n"
            "    config.kubernetes.io/function: |\n      container:\n        image: evil\n",
            "KRM function plugins (config.kubernetes.io/function) are not allowed",
            id="krm-container-function",
        ),
        pytest.param(
            "apiVersion: builtin\nkind: HelmChartInflationGenerator\nmetadata: {name: x}\n",
            "HelmChartInflationGenerator is not an allowed builtin kustomize plugin",
            id="helm-generator",
        ),
        pytest.param(
            "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: x}\npath: ../../../etc/x\n",
            "path: '../../../etc/x' points outside the artifact root",
            id="builtin-reading-outside",
        ),
    ],
)
def test_other_plugins_are_rejected_naming_the_file(config: str, message: str) -> None:
    errors = check_plugin_config("apps/t.yaml", config, "apps")
    assert len(errors) == 1
    assert errors[0].startswith("apps/t.yaml: document 0: ")
    assert message in errors[0]
