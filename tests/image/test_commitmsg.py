"""Commit messages render Flux's documented templates over Flux's template data exactly as
image-automation-controller would (Go text/template semantics worked out by hand)."""

from __future__ import annotations

import hashlib

import pytest

from fluxbus_image.logic.commitmsg import (
    DEFAULT_MESSAGE_TEMPLATE,
    RemovedTemplateFieldError,
    commit_message,
    template_data,
)
from fluxbus_image.logic.gotemplate import TemplateError
from fluxbus_image.logic.setters import Change, ObjectId

OLD = "ghcr.io/stefanprodan/podinfo:5.0.0"
NEW = "ghcr.io/stefanprodan/podinfo:5.0.3"
DEPLOYMENT = ObjectId("apps/v1", "Deployment", "podinfo", "default")
KUSTOMIZATION = ObjectId("kustomize.config.k8s.io/v1beta1", "Kustomization")
CHANGES = [
    Change(OLD, NEW, "default:podinfo-policy", DEPLOYMENT, "clusters/deploy.yaml"),
    Change(
        "5.0.0", "5.0.3", "default:podinfo-policy:tag", KUSTOMIZATION, "clusters/kustomization.yaml"
    ),
]


def data(values: dict[str, str] | None = None):
    return template_data("podinfo-update", "default", CHANGES, values, update_path="clusters")


DOCS_METHODS = """Automated image update

Automation name: {{ .AutomationObject }}

Files:
{{ range $filename, $_ := .Changed.FileChanges -}}
- {{ $filename }}
{{ end -}}

Objects:
{{ range $resource, $changes := .Changed.Objects -}}
- {{ $resource.Kind }} {{ $resource.Name }}
  Changes:
{{- range $_, $change := $changes }}
    - {{ $change.OldValue }} -> {{ $change.NewValue }}
{{ end -}}
{{ end -}}
"""

DOCS_FUNCTIONS = """Automated image update

Automation name: {{ .AutomationObject }}

Files:
{{ range $filename, $_ := .Changed.FileChanges -}}
- {{ $filename }}
{{ end -}}

Objects:
{{ range $resource, $changes := .Changed.Objects -}}
- {{ $resource.Kind | lower }} {{ $resource.Name | lower }}
  Changes:
{{- range $_, $change := $changes }}
  {{ if contains "5.0.3" $change.NewValue -}}
    - {{ $change.OldValue }} -> {{ $change.NewValue }}
  {{ else -}}
    [skip ci] wrong image
  {{ end -}}
{{ end -}}
{{ end -}}
"""

GERRIT = """Perform automatic image update

Automation name: {{ .AutomationObject }}

{{- $ChangeId := .AutomationObject -}}
{{- $ChangeId = printf "%s%s" $ChangeId ( .Changed.FileChanges | toString ) -}}
{{- $ChangeId = printf "%s%s" $ChangeId ( .Changed.Objects | toString ) -}}
{{- $ChangeId = printf "%s%s" $ChangeId ( .Changed.Changes | toString ) }}
Change-Id: {{ printf "I%s" ( sha256sum $ChangeId | trunc 40 ) }}
"""

HEADER = "Automated image update\n\nAutomation name: default/podinfo-update\n\nFiles:\n"
FILES = "- deploy.yaml\n- kustomization.yaml\n"


def gerrit_change_id() -> str:
    # ObjectIdentifier{ResourceIdentifier{TypeMeta{...}, NameMeta{...}}}: three levels of braces
    dep = "{{{apps/v1 Deployment} {podinfo default}}}"
    kus = "{{{kustomize.config.k8s.io/v1beta1 Kustomization} { }}}"
    c1 = f"{{{OLD} {NEW} default:podinfo-policy}}"
    c2 = "{5.0.0 5.0.3 default:podinfo-policy:tag}"
    files = f"map[deploy.yaml:map[{dep}:[{c1}]] kustomization.yaml:map[{kus}:[{c2}]]]"
    objects = f"map[{dep}:[{c1}] {kus}:[{c2}]]"
    changes = f"[{c1} {c2}]"
    text = "default/podinfo-update" + files + objects + changes
    return "I" + hashlib.sha256(text.encode()).hexdigest()[:40]


@pytest.mark.parametrize(
    ("template", "values", "expected"),
    [
        pytest.param(None, None, "Update from image update automation", id="default"),
        pytest.param("", None, DEFAULT_MESSAGE_TEMPLATE, id="empty-is-default"),
        pytest.param(
            "Automated image update by Flux", None, "Automated image update by Flux", id="plain"
        ),
        pytest.param(
            DOCS_METHODS,
            None,
            HEADER
            + FILES
            + "Objects:\n- Deployment podinfo\n  Changes:\n"
            + f"    - {OLD} -> {NEW}\n"
            + "- Kustomization \n  Changes:\n    - 5.0.0 -> 5.0.3\n",
            id="docs-helper-methods",
        ),
        pytest.param(
            DOCS_FUNCTIONS,
            None,
            HEADER
            + FILES
            + "Objects:\n- deployment podinfo\n  Changes:\n"
            + f"  - {OLD} -> {NEW}\n  "
            + "- kustomization \n  Changes:\n  - 5.0.0 -> 5.0.3\n  ",
            id="docs-template-functions",
        ),
        pytest.param(
            "Automated image update by Flux for cluster {{ .Values.cluster }}.",
            {"cluster": "prod"},
            "Automated image update by Flux for cluster prod.",
            id="docs-values",
        ),
        pytest.param(
            GERRIT,
            None,
            "Perform automatic image update\n\nAutomation name: default/podinfo-update\n"
            f"Change-Id: {gerrit_change_id()}\n",
            id="docs-gerrit-change-id",
        ),
        pytest.param(
            "{{ range .Changed.Changes }}{{ .Setter }};{{ end }}",
            None,
            "default:podinfo-policy;default:podinfo-policy:tag;",
            id="changes-method",
        ),
        pytest.param(
            "{{ range $o, $_ := .Changed.Objects }}{{ $o.APIVersion }}|{{ $o.Namespace }};{{ end }}",
            None,
            "apps/v1|default;kustomize.config.k8s.io/v1beta1|;",
            id="object-identifier-fields",
        ),
        pytest.param(
            "{{ .AutomationObject.Namespace }}/{{ .AutomationObject.Name }}",
            None,
            "default/podinfo-update",
            id="automation-object-fields",
        ),
    ],
)
def test_flux_templates_render_as_flux_renders_them(
    template: str | None, values: dict[str, str] | None, expected: str
) -> None:
    assert commit_message(template, data(values)) == expected


@pytest.mark.parametrize(
    ("template", "field"),
    [
        pytest.param("{{ range .Updated.Images }}{{ . }}{{ end }}", ".Updated", id="updated"),
        pytest.param("{{ .Changed.ImageResult }}", ".Changed.ImageResult", id="image-result"),
    ],
)
def test_removed_fields_are_explained(template: str, field: str) -> None:
    with pytest.raises(RemovedTemplateFieldError, match=f"template uses removed '{field}' field"):
        commit_message(template, data())


def test_other_errors_carry_the_template_name() -> None:
    with pytest.raises(TemplateError) as caught:
        commit_message("{{ .Changed.Nope }}", data())
    assert str(caught.value) == (
        'template: commit message:1:11: executing "commit message" at <.Changed.Nope>: '
        "can't evaluate field Nope in type update.Result"
    )


def test_file_names_are_relative_to_the_update_path_as_in_flux() -> None:
    assert sorted(data().Changed.FileChanges) == ["deploy.yaml", "kustomization.yaml"]
    plain = template_data("a", "b", CHANGES, None)
    assert sorted(plain.Changed.FileChanges) == [
        "clusters/deploy.yaml",
        "clusters/kustomization.yaml",
    ]
