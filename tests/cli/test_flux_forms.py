"""Flux users' habits work: `get sources git`, `reconcile source git NAME`,
`get images policy`, `-o wide`, `--version`, a "did you mean" on a typo, and
shell completion."""

from __future__ import annotations

import re

import pytest
from cli_helpers import MANIFESTS, Cli, controller
from typer.testing import CliRunner

from fluxbus_cli.app import app
from fluxbus_common.bus import Bus


def table(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        pytest.param(("sources", "git"), ["podinfo"], id="get-sources-git"),
        pytest.param(("source", "git", "podinfo"), ["podinfo"], id="get-source-git-name"),
        pytest.param(("sources", "all"), ["gitrepository/podinfo"], id="get-sources-all"),
        pytest.param(("images", "repository"), ["podinfo"], id="get-images-repository"),
        pytest.param(("image", "policy", "podinfo"), ["podinfo"], id="get-image-policy-name"),
        pytest.param(("images", "update"), [], id="get-images-update-none-stored"),
        pytest.param(
            ("images", "all"),
            ["imagerepository/podinfo", "imagepolicy/podinfo"],
            id="get-images-all",
        ),
        pytest.param(("alert-providers",), ["slack-bot"], id="get-alert-providers"),
    ],
)
async def test_flux_get_forms_list_the_kinds_they_name(cli: Cli, words, expected):
    await cli("apply", "-f", str(MANIFESTS))
    result = await cli("get", *words)
    assert result.code == 0, result.stderr
    names = [row[0] for row in table(result.stdout) if row[0] != "NAME"]
    assert names == expected


async def test_reconcile_source_git_name_reconciles_the_git_repository(cli: Cli, bus: Bus):
    await cli("apply", "-f", str(MANIFESTS / "podinfo.yaml"))
    async with controller(bus, "gitrepository") as fake:
        result = await cli("reconcile", "source", "git", "podinfo")
    assert result.code == 0, result.stderr
    assert "✔ fetched revision main@sha1:4b2c5e0d" in result.stderr
    assert fake.handled and fake.handled[0].startswith("gitrepository.flux-system.podinfo@")


@pytest.mark.parametrize(
    ("words", "message"),
    [
        pytest.param(
            ("kustomizaton",), 'unknown kind "kustomizaton", did you mean "kustomization"?'
        ),
        pytest.param(("gitrepostories",), 'did you mean "gitrepositories"?', id="plural-typo"),
        pytest.param(("sources", "gti"), 'unknown kind "sources gti", did you mean "sources git"?'),
        pytest.param(("sources", "oci"), "OCIRepository", id="flux-source-not-served"),
        pytest.param(("images",), '"images" needs a subcommand: images', id="group-alone"),
        pytest.param(("ks", "a", "b"), "expected at most one NAME, got a b", id="two-names"),
    ],
)
async def test_a_kind_typo_is_answered_with_the_closest_kind(cli: Cli, words, message):
    result = await cli("get", *words)
    assert result.code == 1
    assert message in result.stderr


async def test_wide_output_adds_where_each_object_comes_from(cli: Cli):
    await cli("apply", "-f", str(MANIFESTS / "podinfo.yaml"))

    sources = table((await cli("get", "sources", "git", "-o", "wide")).stdout)
    kustomizations = table((await cli("get", "ks", "-o", "wide", "-A")).stdout)

    assert sources[0][-3:] == ["URL", "REF", "INTERVAL"]
    assert sources[1][-3:] == ["https://github.com/stefanprodan/podinfo", "branch master", "1m0s"]
    assert kustomizations[0][:2] == ["NAMESPACE", "NAME"]
    assert kustomizations[0][-5:] == ["SOURCE", "PATH", "PRUNE", "TARGET NAMESPACE", "INTERVAL"]
    assert kustomizations[1][-5:] == [
        "GitRepository/podinfo",
        "./kustomize",
        "True",
        "default",
        "30m0s",
    ]


async def test_version_flag_prints_the_version_like_the_command(cli: Cli):
    flag, command = await cli("--version"), await cli("version")
    assert flag.code == 0 and flag.stdout.startswith("fluxbus ")
    assert flag.stdout == command.stdout


def test_shell_completion_is_offered_and_completes_commands_and_kinds():
    runner = CliRunner()
    shown = runner.invoke(app, ["--show-completion", "bash"], prog_name="fluxbus")
    assert shown.exit_code == 0
    assert "_FLUXBUS_COMPLETE=complete_bash" in shown.stdout

    def complete(line: str) -> list[str]:
        env = {
            "_FLUXBUS_COMPLETE": "complete_bash",
            "COMP_WORDS": line,
            "COMP_CWORD": str(len(line.split(" ")) - 1),
        }
        return runner.invoke(app, [], prog_name="fluxbus", env=env).stdout.split()

    assert complete("fluxbus get kustom") == ["kustomizations"]
    assert complete("fluxbus reconcile sources ") == ["git", "helm", "chart", "all"]
    assert complete("fluxbus get images p") == ["policy"]
    assert "reconcile" in complete("fluxbus rec")
