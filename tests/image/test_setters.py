"""The Setters strategy rewrites exactly the values marked with `$imagepolicy` comments and leaves
every other byte alone (cases from image-automation-controller's internal/update testdata and
kyaml's fieldmeta rules)."""

from __future__ import annotations

import pytest

from fluxbus_common.api.image import ImageRef
from fluxbus_image.logic.setters import (
    MAX_ALIASES,
    Change,
    ObjectId,
    SetterParseError,
    setter_values,
    update_yaml,
)

DIGEST = "sha256:6745aaad46d795c9836632e1fb62f24b7e7f4c843144da8e47a5465c411a14be"

# The policies of Flux's TestUpdateWithSetters, plus one with a number-like tag.
POLICIES = {
    "automation-ns:policy": ImageRef(name="index.repo.fake/updated", tag="v1.0.1"),
    "automation-ns:unchanged": ImageRef(name="image", tag="v1.0.0"),
    "automation-ns:policy-with-digest": ImageRef(name="image", tag="v1.0.0", digest=DIGEST),
    "flux-system:numeric": ImageRef(name="ghcr.io/org/app", tag="1.10"),
}

CRONJOB = ObjectId("batch/v1beta1", "CronJob", "foo", "bar")
KUSTOMIZATION = ObjectId("kustomize.config.k8s.io/v1beta1", "Kustomization")


def lines(*rows: str, eol: str = "\n") -> bytes:
    return "".join(row + eol for row in rows).encode()


MARKED_CRONJOB = (
    "apiVersion: batch/v1beta1",
    "kind: CronJob",
    "metadata:",
    "  name: foo",
    "  namespace: bar",
    "spec:",
    '  schedule: "*/1 * * * *"',
    "  jobTemplate:",
    "    spec:",
    "      template:",
    "        spec:",
    "          containers:",
    "          - name: c",
    '            image: {image} # {{"$imagepolicy": "automation-ns:policy"}}',
    "          - name: d",
    '            image: image:v1.0.0 # {{"$imagepolicy": "automation-ns:unchanged"}}',
)


def cronjob(image: str) -> bytes:
    return lines(*(row.format(image=image) for row in MARKED_CRONJOB))


KUSTOMIZATION_ROWS = (
    "# This is not intended to be a working kustomization",
    "apiVersion: kustomize.config.k8s.io/v1beta1",
    "kind: Kustomization",
    "resources:",
    "  - unimportant.yaml",
    "images:",
    "  - name: container",
    '    newName: {name} # {{"$imagepolicy": "automation-ns:policy:name"}}',
    '    newTag: {tag} # {{"$imagepolicy": "automation-ns:policy:tag"}}',
    '    newDigest: {digest} # {{"$imagepolicy": "automation-ns:policy-with-digest:digest"}}',
    "patches:",
    "  - patch: |",
    "      - op: replace",
    "        path: /spec/template/spec/containers/0/volumeMounts",
    "        value:",
    "          - mountPath: /usr/share/wildfly/log",
    "            name: wildfly-standalone-log",
    "    target:",
    "      kind: Deployment",
    '      image: {image} # {{"$imagepolicy": "automation-ns:policy-with-digest"}}',
)


def kustomization(name: str, tag: str, digest: str, image: str) -> bytes:
    return lines(
        *(row.format(name=name, tag=tag, digest=digest, image=image) for row in KUSTOMIZATION_ROWS)
    )


def test_flux_marked_cronjob_updates_only_the_policy_that_moved() -> None:
    result = update_yaml(cronjob("image:v1.0.0"), POLICIES, path="marked.yaml")
    assert result.content == cronjob("index.repo.fake/updated:v1.0.1")
    assert result.changes == [
        Change(
            "image:v1.0.0",
            "index.repo.fake/updated:v1.0.1",
            "automation-ns:policy",
            CRONJOB,
            "marked.yaml",
        )
    ]


def test_flux_kustomization_sets_name_tag_digest_and_full_image_around_a_block_scalar() -> None:
    before = kustomization("replaced", "v1", "sha256:1234567890abcdef", "image")
    after = kustomization("index.repo.fake/updated", "v1.0.1", DIGEST, f"image:v1.0.0@{DIGEST}")
    result = update_yaml(before, POLICIES, path="kustomization.yml")
    assert result.content == after
    assert [(c.old_value, c.new_value, c.setter, c.object) for c in result.changes] == [
        ("replaced", "index.repo.fake/updated", "automation-ns:policy:name", KUSTOMIZATION),
        ("v1", "v1.0.1", "automation-ns:policy:tag", KUSTOMIZATION),
        (
            "sha256:1234567890abcdef",
            DIGEST,
            "automation-ns:policy-with-digest:digest",
            KUSTOMIZATION,
        ),
        ("image", f"image:v1.0.0@{DIGEST}", "automation-ns:policy-with-digest", KUSTOMIZATION),
    ]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            lines(
                "apiVersion: apps/v1",
                "kind: Deployment",
                "metadata:",
                "  name: foo",
                "spec:",
                "  template:",
                "    # a head comment with UTF-8: 컨테이너",
                "    spec: # 컨테이너",
                "      containers:",
                "      - name: c",
                '        image: used:v1.0.0 # {"$imagepolicy": "automation-ns:policy"}',
                "        args:",
                "          - --flag   # trailing comment",
            ),
            lines(
                "apiVersion: apps/v1",
                "kind: Deployment",
                "metadata:",
                "  name: foo",
                "spec:",
                "  template:",
                "    # a head comment with UTF-8: 컨테이너",
                "    spec: # 컨테이너",
                "      containers:",
                "      - name: c",
                '        image: index.repo.fake/updated:v1.0.1 # {"$imagepolicy": "automation-ns:policy"}',
                "        args:",
                "          - --flag   # trailing comment",
            ),
            id="deployment-comments-and-indentation-stay",
        ),
        pytest.param(
            lines(
                "spec:",
                "  containers:",
                "    - name: c",
                "      args:",
                '        - --image=x  # {"$imagepolicy": "automation-ns:policy"}',
                "      env:",
                "        - name: IMAGE",
                '          value: "old:1" # {"$imagepolicy": "automation-ns:policy"}',
            ),
            lines(
                "spec:",
                "  containers:",
                "    - name: c",
                "      args:",
                '        - index.repo.fake/updated:v1.0.1  # {"$imagepolicy": "automation-ns:policy"}',
                "      env:",
                "        - name: IMAGE",
                '          value: "index.repo.fake/updated:v1.0.1" # {"$imagepolicy": "automation-ns:policy"}',
            ),
            id="sequence-item-and-env-value-double-quoted",
        ),
        pytest.param(
            lines(
                "apiVersion: helm.toolkit.fluxcd.io/v2",
                "kind: HelmRelease",
                "spec:",
                "  values:",
                "    image:",
                '      repository: ghcr.io/org/old # {"$imagepolicy": "flux-system:numeric:name"}',
                '      tag: \'1.9\' # {"$imagepolicy": "flux-system:numeric:tag"}',
                "    sidecar:",
                '      tag: 1.9 # {"$imagepolicy": "flux-system:numeric:tag"}',
                '      other: 1.9 # {"$imagepolicy": "flux-system:numeric:tag"} and more',
            ),
            lines(
                "apiVersion: helm.toolkit.fluxcd.io/v2",
                "kind: HelmRelease",
                "spec:",
                "  values:",
                "    image:",
                '      repository: ghcr.io/org/app # {"$imagepolicy": "flux-system:numeric:name"}',
                '      tag: \'1.10\' # {"$imagepolicy": "flux-system:numeric:tag"}',
                "    sidecar:",
                '      tag: "1.10" # {"$imagepolicy": "flux-system:numeric:tag"}',
                '      other: 1.9 # {"$imagepolicy": "flux-system:numeric:tag"} and more',
            ),
            id="helmrelease-values-number-like-tag-quoted-single-quotes-kept",
        ),
        pytest.param(
            lines(
                'image: a:1 #{"$imagepolicy":"automation-ns:policy"}',
                'other: a:1 ##   { "$imagepolicy" :  "automation-ns:policy" , "x": null }   ',
                'bad: a:1 # {"$imagepolicy": "automation-ns:policy", "n": 1}',
                'key: # {"$imagepolicy": "automation-ns:policy"}',
                "  a:1",
            ),
            lines(
                'image: index.repo.fake/updated:v1.0.1 #{"$imagepolicy":"automation-ns:policy"}',
                'other: index.repo.fake/updated:v1.0.1 ##   { "$imagepolicy" :  "automation-ns:policy" , "x": null }   ',
                'bad: a:1 # {"$imagepolicy": "automation-ns:policy", "n": 1}',
                'key: # {"$imagepolicy": "automation-ns:policy"}',
                "  a:1",
            ),
            id="json-spacing-variants-but-only-string-maps-and-never-a-key-comment",
        ),
        pytest.param(
            lines(
                "args:",
                '  # {"$imagepolicy": "automation-ns:policy:tag"}',
                "  - v0",
                "  # two comment lines",
                '  # {"$imagepolicy": "automation-ns:policy:tag"}',
                "  - v0",
            ),
            lines(
                "args:",
                '  # {"$imagepolicy": "automation-ns:policy:tag"}',
                "  - v1.0.1",
                "  # two comment lines",
                '  # {"$imagepolicy": "automation-ns:policy:tag"}',
                "  - v0",
            ),
            id="head-comment-of-a-sequence-item-single-line-only",
        ),
        pytest.param(
            lines(
                "---",
                "apiVersion: v1",
                "kind: Pod",
                "metadata: {name: a, namespace: x}",
                "spec:",
                '  containers: [{name: c, image: a:1}] # {"$imagepolicy": "automation-ns:policy"}',
                '  image: a:1 # {"$imagepolicy": "automation-ns:policy"}',
                "...",
                "---",
                "# second document",
                "image: >",
                "  a:1",
                'tag: v0 # {"$imagepolicy": "automation-ns:policy:tag"}',
            ),
            lines(
                "---",
                "apiVersion: v1",
                "kind: Pod",
                "metadata: {name: a, namespace: x}",
                "spec:",
                '  containers: [{name: c, image: a:1}] # {"$imagepolicy": "automation-ns:policy"}',
                '  image: index.repo.fake/updated:v1.0.1 # {"$imagepolicy": "automation-ns:policy"}',
                "...",
                "---",
                "# second document",
                "image: >",
                "  a:1",
                'tag: v1.0.1 # {"$imagepolicy": "automation-ns:policy:tag"}',
            ),
            id="multi-doc-flow-collections-and-block-scalars-untouched",
        ),
        pytest.param(
            lines(
                '\ufeffimage: a:1   # {"$imagepolicy": "automation-ns:policy"}',
                "x:   'it''s'  ",
                eol="\r\n",
            ),
            lines(
                '\ufeffimage: index.repo.fake/updated:v1.0.1   # {"$imagepolicy": "automation-ns:policy"}',
                "x:   'it''s'  ",
                eol="\r\n",
            ),
            id="bom-crlf-and-trailing-whitespace-kept",
        ),
        pytest.param(
            lines(
                "a:",
                '  # {"$imagepolicy": "automation-ns:policy:tag"}',
                "  - v0",
                'b: v0 # {"$imagepolicy": "automation-ns:policy:tag"}',
                eol="\r\n",
            ),
            lines(
                "a:",
                '  # {"$imagepolicy": "automation-ns:policy:tag"}',
                "  - v1.0.1",
                'b: v1.0.1 # {"$imagepolicy": "automation-ns:policy:tag"}',
                eol="\r\n",
            ),
            id="crlf-head-comment",
        ),
        pytest.param(
            lines(
                'image: "a:1" # {"$imagepolicy": "automation-ns:unchanged:digest"}',
                'plain: d # {"$imagepolicy": "automation-ns:unchanged:digest"}',
            ),
            lines(
                'image: "" # {"$imagepolicy": "automation-ns:unchanged:digest"}',
                'plain: "" # {"$imagepolicy": "automation-ns:unchanged:digest"}',
            ),
            id="digest-setter-without-digest-empties-the-value-quoted",
        ),
    ],
)
def test_only_marked_values_change(before: bytes, after: bytes) -> None:
    assert update_yaml(before, POLICIES).content == after


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(
            lines("image: image:v1.0.0 # uses the same image. but should be left alone"),
            id="unmarked",
        ),
        pytest.param(
            lines('image: user:v1.0.0 # {"$imagepolicy": "other-namespace:policy"}'),
            id="unknown-policy",
        ),
        pytest.param(
            lines('image: image:v1.0.0 # {"$imagepolicy": "automation-ns:unchanged"}'),
            id="already-equal",
        ),
        pytest.param(
            lines('image: image:v1.0.0 # {"$imagepolicy": "automation-ns:unchanged:size"}'),
            id="unknown-suffix",
        ),
        pytest.param(b"{{ not yaml: [ # $imagepolicy\n", id="bare-token-is-not-the-quoted-token"),
    ],
)
def test_nothing_changes_and_nothing_is_recorded(content: bytes) -> None:
    result = update_yaml(content, POLICIES)
    assert result.content is content
    assert result.changes == []


def test_a_document_without_metadata_records_an_empty_object() -> None:
    content = lines('newTag: v1 # {"$imagepolicy": "automation-ns:policy:tag"}')
    [change] = update_yaml(content, POLICIES, path="values.yaml").changes
    assert change.object == ObjectId("", "", "", "")
    assert change.file == "values.yaml"


@pytest.mark.parametrize(
    ("content", "line"),
    [
        pytest.param(
            lines('image: a:1 # {"$imagepolicy": "automation-ns:policy"}', "  - broken: [", "x: y"),
            2,
            id="structure",
        ),
        pytest.param(
            lines('a: "$imagepolicy"', "b: 'unterminated"),
            3,
            id="unterminated-quote",
        ),
        pytest.param(b'a: "$imagepolicy"\nb: \xff\xfe\n', 2, id="invalid-utf8"),
    ],
)
def test_an_unparsable_marked_file_is_reported_with_its_line(content: bytes, line: int) -> None:
    with pytest.raises(SetterParseError) as caught:
        update_yaml(content, POLICIES, path="dir/bad.yaml")
    assert caught.value.path == "dir/bad.yaml"
    assert caught.value.line == line
    assert str(caught.value).startswith(f"dir/bad.yaml:{line}: ")


def test_a_yaml_bomb_is_refused_without_expanding_it() -> None:
    rows = ['marker: "$imagepolicy"', "a: &a [x, x, x, x, x, x, x, x, x]"]
    rows += [f"b{i}: &b{i} [*a, *a, *a, *a, *a, *a, *a, *a]" for i in range(MAX_ALIASES // 8 + 1)]
    with pytest.raises(SetterParseError, match="too many aliases"):
        update_yaml(lines(*rows), POLICIES)


def test_every_policy_defines_four_setters() -> None:
    assert setter_values({"ns:p": ImageRef(name="r/app", tag="v2", digest="sha256:ab")}) == {
        "ns:p": "r/app:v2@sha256:ab",
        "ns:p:tag": "v2",
        "ns:p:name": "r/app",
        "ns:p:digest": "sha256:ab",
    }
