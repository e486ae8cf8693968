"""The pure Helm logic of the source service: index normalising, version choice,
chart URLs, artifact versions, values merging and repository credentials."""

from __future__ import annotations

import base64
import json

import pytest

from fluxbus_source.logic.helmauth import CredentialsError, docker_config_login, helm_credentials
from fluxbus_source.logic.helmchart import BuildSummary, artifact_version, pick_oci_version
from fluxbus_source.logic.helmindex import (
    ChartReferenceError,
    IndexFormatError,
    index_revision,
    normalise_index,
    pick_version,
    resolve_chart_url,
    safe_url,
    same_host,
)
from fluxbus_source.logic.values import ValuesFileError, merge_files, merge_values

INDEX = b"""
apiVersion: v1
entries:
  web:
    - {name: web, version: 1.2.0, urls: [web-1.2.0.tgz], created: "2024-01-02T00:00:00Z"}
    - {name: web, version: 2.0.0-rc.1, urls: [web-2.0.0-rc.1.tgz]}
    - {name: web, version: 1.10.0, urls: [web-1.10.0.tgz], digest: abc}
    - {name: web, version: not-semver, urls: [x.tgz]}
  api:
    - {name: api, version: 0.1.0, urls: [https://cdn.example.com/api-0.1.0.tgz]}
generated: "2024-01-01T00:00:00Z"
"""


def test_normalising_sorts_versions_newest_first_and_drops_non_semver():
    doc = json.loads(normalise_index(INDEX))
    assert list(doc["entries"]) == ["api", "web"]
    assert [v["version"] for v in doc["entries"]["web"]] == ["2.0.0-rc.1", "1.10.0", "1.2.0"]


def test_equal_indexes_in_another_order_have_the_same_revision():
    reordered = b"""
generated: "2024-01-01T00:00:00Z"
entries:
  api:
    - {urls: [https://cdn.example.com/api-0.1.0.tgz], version: 0.1.0, name: api}
  web:
    - {name: web, version: 1.10.0, urls: [web-1.10.0.tgz], digest: abc}
    - {name: web, version: not-semver, urls: [x.tgz]}
    - {name: web, version: 1.2.0, urls: [web-1.2.0.tgz], created: "2024-01-02T00:00:00Z"}
    - {name: web, version: 2.0.0-rc.1, urls: [web-2.0.0-rc.1.tgz]}
apiVersion: v1
"""
    assert index_revision(normalise_index(INDEX)) == index_revision(normalise_index(reordered))
    assert index_revision(b"x").startswith("sha256:")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        pytest.param(b"entries: {}\n", "no API version specified", id="no-api-version"),
        pytest.param(b"- a\n- b\n", "not a YAML mapping", id="a-list"),
        pytest.param(b"apiVersion: v1\nentries: [1]\n", "not a mapping", id="entries-list"),
        pytest.param(b"apiVersion: v1\nentries: {a: [\n", "error converting YAML", id="bad-yaml"),
    ],
)
def test_an_invalid_index_is_refused(data: bytes, fragment: str):
    with pytest.raises(IndexFormatError, match=fragment):
        normalise_index(data)


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        pytest.param(None, "1.10.0", id="unset-is-latest-stable"),
        pytest.param("*", "1.10.0", id="star-skips-prereleases"),
        pytest.param("1.2.x", "1.2.0", id="patch-range"),
        pytest.param(">=1.0.0 <2.0.0", "1.10.0", id="range-highest"),
        pytest.param(">=2.0.0-0", "2.0.0-rc.1", id="prerelease-range"),
        pytest.param("2.0.0-rc.1", "2.0.0-rc.1", id="exact-prerelease"),
        pytest.param("not-semver", "not-semver", id="exact-string-wins"),
    ],
)
def test_the_highest_matching_version_is_picked(constraint: str | None, expected: str):
    index = json.loads(normalise_index(INDEX))
    if expected == "not-semver":
        index["entries"]["web"].append({"name": "web", "version": "not-semver", "urls": ["x"]})
    assert pick_version(index, "web", constraint).version == expected


@pytest.mark.parametrize(
    ("name", "constraint", "message"),
    [
        pytest.param("db", "*", "no chart name found", id="unknown-chart"),
        pytest.param("web", "9.*", "no 'web' chart with version matching '9.*' found", id="none"),
        pytest.param("web", ">=>1", "improper constraint", id="bad-constraint"),
    ],
)
def test_no_matching_version_is_a_chart_reference_error(name: str, constraint: str, message: str):
    index = json.loads(normalise_index(INDEX))
    with pytest.raises(ChartReferenceError, match=message):
        pick_version(index, name, constraint)


def test_the_picked_version_carries_its_urls_and_digest():
    cv = pick_version(json.loads(normalise_index(INDEX)), "web", "1.10.0")
    assert (cv.name, cv.urls, cv.digest) == ("web", ("web-1.10.0.tgz",), "abc")


@pytest.mark.parametrize(
    ("repo", "ref", "expected"),
    [
        pytest.param(
            "https://h/charts", "web-1.0.0.tgz", "https://h/charts/web-1.0.0.tgz", id="relative"
        ),
        pytest.param(
            "https://h/charts/", "web-1.0.0.tgz", "https://h/charts/web-1.0.0.tgz", id="slash"
        ),
        pytest.param("https://h/charts", "https://cdn/x.tgz", "https://cdn/x.tgz", id="absolute"),
        pytest.param("https://h/charts", "/x.tgz", "https://h/x.tgz", id="rooted"),
        pytest.param(
            "https://h/charts?token=1", "x.tgz", "https://h/charts/x.tgz?token=1", id="query-kept"
        ),
    ],
)
def test_chart_urls_resolve_against_the_repository(repo: str, ref: str, expected: str):
    assert resolve_chart_url(repo, ref) == expected


def test_hosts_and_urls_for_messages():
    assert same_host("https://h:8443/a", "https://h:8443/b")
    assert not same_host("https://h/a", "https://cdn/b")
    assert safe_url("https://user:secret@h/x") == "https://h/x"
    assert safe_url("https://h/x") == "https://h/x"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({}, "1.2.3", id="chart-version"),
        pytest.param({"values_generation": 3}, "1.2.3+3", id="values-add-generation"),
        pytest.param(
            {"source_revision": "main@sha1:0123456789abcdef0123"},
            "1.2.3+0123456789ab",
            id="revision-strategy",
        ),
        pytest.param(
            {"source_revision": "sha256:abcdefabcdef99", "values_generation": 2},
            "1.2.3+abcdefabcdef.2",
            id="revision-and-values",
        ),
    ],
)
def test_artifact_versions_follow_flux(kwargs: dict[str, object], expected: str):
    assert artifact_version("1.2.3", **kwargs) == expected  # type: ignore[arg-type]
    assert artifact_version("1.2.3+old", **kwargs).startswith("1.2.3")


def test_build_summaries_speak_fluxs_words():
    assert str(BuildSummary("web", "1.0.0", False)) == "pulled 'web' chart with version '1.0.0'"
    packaged = BuildSummary("web", "1.0.0+1", True, ("values.yaml", "prod.yaml"))
    assert str(packaged) == (
        "packaged 'web' chart with version '1.0.0+1' and merged values files "
        "[values.yaml prod.yaml]"
    )
    assert packaged.reason == "ChartPackageSucceeded"


def test_oci_tags_spell_build_metadata_with_underscores():
    tags = ["0.1.0", "0.2.0_build.1", "latest", "1.0.0-beta"]
    assert pick_oci_version(tags, "web", "*") == "0.2.0_build.1"
    assert pick_oci_version(tags, "web", "<0.2.0") == "0.1.0"
    with pytest.raises(ChartReferenceError):
        pick_oci_version(tags, "web", ">=2")


def test_values_merge_deeply_later_files_winning():
    base = {"image": {"repo": "nginx", "tag": "1"}, "ports": [80], "keep": True}
    override = {"image": {"tag": "2"}, "ports": [443], "extra": None}
    assert merge_values(base, override) == {
        "image": {"repo": "nginx", "tag": "2"},
        "ports": [443],
        "keep": True,
        "extra": None,
    }
    assert base["image"] == {"repo": "nginx", "tag": "1"}
    files = [("a.yaml", b"a: 1\nb: {c: 1}\n"), ("empty.yaml", b""), ("b.yaml", b"b: {d: 2}\n")]
    assert merge_files(files) == {"a": 1, "b": {"c": 1, "d": 2}}
    with pytest.raises(ValuesFileError, match=r"unmarshaling values from 'bad\.yaml' failed"):
        merge_files([("bad.yaml", b"- a list\n")])


def test_repository_credentials_come_from_flux_keys():
    creds = helm_credentials({"username": b"u", "password": b"p"}, "auth", None, None)
    assert creds is not None and (creds.username, creds.password) == ("u", "p")
    assert "p" not in repr(creds).replace("HelmCredentials", "")
    tls = helm_credentials(None, None, {"ca.crt": b"CA", "tls.crt": b"C", "tls.key": b"K"}, "tls")
    assert tls is not None and (tls.ca, tls.cert, tls.key) == (b"CA", b"C", b"K")
    legacy = helm_credentials({"caFile": b"CA"}, "auth", None, None)
    assert legacy is not None and legacy.ca == b"CA" and legacy.deprecated_tls
    assert helm_credentials({}, "auth", None, None) is None
    with pytest.raises(CredentialsError, match="'username' and 'password' must be set together"):
        helm_credentials({"username": b"u"}, "auth", None, None)
    with pytest.raises(CredentialsError, match="must be set together"):
        helm_credentials(None, None, {"tls.crt": b"C"}, "tls")


def test_a_docker_config_gives_the_login_for_the_registry_host():
    auth = base64.b64encode(b"robot:s3cret").decode()
    config = {"auths": {"https://reg.example:5000": {"auth": auth}, "other": {"username": "x"}}}
    data = {".dockerconfigjson": json.dumps(config).encode()}
    assert docker_config_login(data, "oci://reg.example:5000/charts", "creds") == (
        "robot",
        "s3cret",
    )
    assert docker_config_login(data, "oci://elsewhere/charts", "creds") is None
    with pytest.raises(CredentialsError, match="not valid JSON"):
        docker_config_login({".dockerconfigjson": b"{"}, "oci://h/c", "creds")


def test_creation_times_stay_as_written_and_break_ties_between_builds():
    index = json.loads(
        normalise_index(
            b"apiVersion: v1\n"
            b"entries:\n"
            b"  web:\n"
            b"    - {name: web, version: 1.0.0+a, created: 2024-01-01T00:00:00Z, urls: [a]}\n"
            b"    - {name: web, version: 1.0.0+b, created: 2024-03-01T00:00:00Z, urls: [b]}\n"
        )
    )
    assert index["entries"]["web"][0]["created"] == "2024-03-01T00:00:00Z"
    assert pick_version(index, "web", "1.0.0").urls == ("b",)
