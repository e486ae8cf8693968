"""HTTP surface: discovery, OpenAPI, verbs, metadata rules, Status errors, watches."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from kubelite_helpers import Raw, configmap, deployment

from fluxbus_kubelite.testing import KubeliteHandle

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def cms(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/configmaps"


async def watch_lines(
    server: KubeliteHandle,
    path: str,
    params: dict[str, str],
    count: int,
    timeout: float = 10,
    on_event: Callable[[list[dict[str, Any]]], Awaitable[None]] | None = None,
) -> list[dict[str, Any]]:
    """Read count watch events (one JSON object a line) from a watch request;
    `on_event(events so far)` runs after each one."""
    out: list[dict[str, Any]] = []
    async with server.session() as s, asyncio.timeout(timeout):
        async with s.get(server.url + path, params={"watch": "true", **params}) as resp:
            assert resp.status == 200
            while len(out) < count:
                line = await resp.content.readline()
                if not line:
                    break
                out.append(json.loads(line))
                if on_event is not None:
                    await on_event(out)
            # leave the stream as a client that stops watching does: drop the
            # connection (a TLS close would wait for the server's close_notify)
            if resp.connection is not None and resp.connection.transport is not None:
                resp.connection.transport.abort()
    return out


# ----------------------------------------------------------------------- discovery


async def test_version_reports_major_minor_and_git_version(raw: Raw) -> None:
    status, body, _ = await raw("GET", "/version")
    assert status == 200
    assert body["major"] == "1" and body["minor"] and body["gitVersion"].startswith("v1.")


async def test_legacy_discovery_lists_groups_and_resources(raw: Raw) -> None:
    _, api, _ = await raw("GET", "/api")
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    _, apis, _ = await raw("GET", "/apis")
    assert apis["kind"] == "APIGroupList"
    groups = {g["name"]: g for g in apis["groups"]}
    assert groups["apps"]["preferredVersion"]["groupVersion"] == "apps/v1"
    assert groups["autoscaling"]["preferredVersion"]["version"] == "v2"
    _, res, _ = await raw("GET", "/apis/apps/v1")
    by_name = {r["name"]: r for r in res["resources"]}
    assert by_name["deployments"]["kind"] == "Deployment"
    assert by_name["deployments"]["shortNames"] == ["deploy"]
    assert by_name["deployments"]["namespaced"] is True
    assert "deployments/status" in by_name and "deployments/scale" in by_name


async def test_aggregated_discovery_answers_with_its_content_type(raw: Raw) -> None:
    status, body, headers = await raw(
        "GET", "/apis", headers={"Accept": AGGREGATED + ",application/json"}
    )
    assert status == 200
    assert headers["Content-Type"] == AGGREGATED
    assert body["kind"] == "APIGroupDiscoveryList"
    apps = next(i for i in body["items"] if i["metadata"]["name"] == "apps")
    deploy = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    assert deploy["scope"] == "Namespaced"
    assert {s["subresource"] for s in deploy["subresources"]} == {"status", "scale"}
    _, core, headers = await raw("GET", "/api", headers={"Accept": AGGREGATED})
    assert headers["Content-Type"] == AGGREGATED
    assert core["items"][0]["versions"][0]["version"] == "v1"


async def test_openapi_v3_declares_field_validation_on_patch(raw: Raw) -> None:
    _, index, _ = await raw("GET", "/openapi/v3")
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    status, doc, _ = await raw("GET", url)
    assert status == 200
    path = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    patch = path["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
    }
    assert any(p["name"] == "fieldValidation" and p["in"] == "query" for p in patch["parameters"])
    assert "io.k8s.api.apps.v1.Deployment" in doc["components"]["schemas"]


# ----------------------------------------------------------------------- metadata


async def test_create_sets_uid_timestamp_and_moves_resource_version(raw: Raw, ns: str) -> None:
    status, a, _ = await raw("POST", cms(ns), configmap("a"))
    assert status == 201
    status, b, _ = await raw("POST", cms(ns), configmap("b"))
    assert a["metadata"]["uid"] and a["metadata"]["creationTimestamp"]
    assert int(b["metadata"]["resourceVersion"]) > int(a["metadata"]["resourceVersion"])
    status, upd, _ = await raw("PUT", cms(ns) + "/a", {**a, "data": {"x": "1"}})
    assert status == 200
    assert upd["metadata"]["uid"] == a["metadata"]["uid"]
    assert upd["metadata"]["creationTimestamp"] == a["metadata"]["creationTimestamp"]


async def test_noop_update_keeps_resource_version(raw: Raw, ns: str) -> None:
    _, a, _ = await raw("POST", cms(ns), configmap("a", {"k": "v"}))
    _, same, _ = await raw("PUT", cms(ns) + "/a", a)
    assert same["metadata"]["resourceVersion"] == a["metadata"]["resourceVersion"]
    _, same, _ = await raw(
        "PATCH", cms(ns) + "/a", {"data": {"k": "v"}}, ctype="application/merge-patch+json"
    )
    assert same["metadata"]["resourceVersion"] == a["metadata"]["resourceVersion"]


async def test_generate_name_makes_a_unique_name(raw: Raw, ns: str) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}
    status, obj, _ = await raw("POST", cms(ns), body)
    assert status == 201
    assert obj["metadata"]["name"].startswith("gen-") and len(obj["metadata"]["name"]) > 4


async def test_list_pages_with_limit_and_continue(raw: Raw, ns: str) -> None:
    for i in range(5):
        await raw("POST", cms(ns), configmap(f"c{i}"))
    status, page, _ = await raw("GET", cms(ns), params={"limit": "2"})
    assert status == 200 and page["kind"] == "ConfigMapList"
    names = [i["metadata"]["name"] for i in page["items"]]
    while page["metadata"].get("continue"):
        _, page, _ = await raw(
            "GET", cms(ns), params={"limit": "2", "continue": page["metadata"]["continue"]}
        )
        names += [i["metadata"]["name"] for i in page["items"]]
    assert names == ["c0", "c1", "c2", "c3", "c4"]


async def test_delete_collection_by_label_selector(raw: Raw, ns: str) -> None:
    await raw("POST", cms(ns), configmap("a", labels={"drop": "yes"}))
    await raw("POST", cms(ns), configmap("b"))
    status, _, _ = await raw("DELETE", cms(ns), params={"labelSelector": "drop=yes"})
    assert status == 200
    _, lst, _ = await raw("GET", cms(ns))
    assert [i["metadata"]["name"] for i in lst["items"]] == ["b"]


async def test_query_booleans_parse_like_the_api_server(raw: Raw, ns: str) -> None:
    await raw.apply(cms(ns) + "/c", configmap("c", {"a": "1"}), "alice")
    status, _, _ = await raw.apply(cms(ns) + "/c", configmap("c", {"a": "2"}), "bob", force="False")
    assert status == 409
    status, _, _ = await raw.apply(cms(ns) + "/c", configmap("c", {"a": "2"}), "bob", force="True")
    assert status == 200


# ----------------------------------------------------------------------- errors


async def test_missing_object_is_not_found_with_details(raw: Raw, ns: str) -> None:
    status, body, _ = await raw("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/web")
    assert status == 404
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["reason"] == "NotFound"
    assert body["message"] == 'deployments.apps "web" not found'
    assert body["details"] == {"name": "web", "group": "apps", "kind": "deployments"}
    _, body, _ = await raw("GET", cms(ns) + "/nope")
    assert body["details"] == {"name": "nope", "kind": "configmaps"}


async def test_creating_twice_is_already_exists(raw: Raw, ns: str) -> None:
    await raw("POST", cms(ns), configmap("c1"))
    status, body, _ = await raw("POST", cms(ns), configmap("c1"))
    assert status == 409
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == 'configmaps "c1" already exists'


async def test_stale_resource_version_is_a_conflict(raw: Raw, ns: str) -> None:
    _, c, _ = await raw("POST", cms(ns), configmap("c1"))
    await raw("PUT", cms(ns) + "/c1", {**c, "data": {"a": "1"}})
    status, body, _ = await raw("PUT", cms(ns) + "/c1", {**c, "data": {"a": "2"}})
    assert status == 409
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on configmaps "c1": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


async def test_invalid_name_is_unprocessable(raw: Raw, ns: str) -> None:
    status, body, _ = await raw("POST", cms(ns), configmap("Bad_Name"))
    assert status == 422
    assert body["reason"] == "Invalid"
    assert body["message"].startswith(
        'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"'
    )
    assert body["details"]["kind"] == "ConfigMap" and body["details"]["name"] == "Bad_Name"
    assert body["details"]["causes"][0]["reason"] == "FieldValueInvalid"
    assert body["details"]["causes"][0]["field"] == "metadata.name"


async def test_rbac_names_are_path_segments_as_in_kubernetes(raw: Raw) -> None:
    """`system:auth-delegator`-style names are valid for RBAC kinds (charts use
    them); a `/` is not."""
    path = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "rules": []}
    status, body, _ = await raw("POST", path, {**role, "metadata": {"name": "web:Reader_1"}})
    assert status == 201, body
    status, body, _ = await raw("POST", path, {**role, "metadata": {"name": "web/reader"}})
    assert status == 422
    assert body["message"] == (
        'ClusterRole.rbac.authorization.k8s.io "web/reader" is invalid: metadata.name: '
        "Invalid value: \"web/reader\": may not contain '/'"
    )


async def test_invalid_label_is_unprocessable(raw: Raw, ns: str) -> None:
    status, body, _ = await raw("POST", cms(ns), configmap("c", labels={"bad key!": "x"}))
    assert status == 422
    assert body["details"]["causes"][0]["field"] == "metadata.labels"
    status, body, _ = await raw("POST", cms(ns), configmap("c", labels={"ok": "bad value!"}))
    assert status == 422


async def test_deployment_selector_is_immutable(raw: Raw, ns: str) -> None:
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/web"
    await raw.apply(path, deployment("web"))
    changed = deployment("web")
    changed["spec"]["selector"] = {"matchLabels": {"app": "web", "v": "2"}}
    changed["spec"]["template"]["metadata"]["labels"] = {"app": "web", "v": "2"}
    status, body, _ = await raw.apply(path, changed)
    assert status == 422
    assert body["reason"] == "Invalid"
    assert "spec.selector" in body["message"] and "field is immutable" in body["message"]


async def test_write_into_missing_namespace_is_not_found(raw: Raw) -> None:
    for params in ({}, {"dryRun": "All"}):
        status, body, _ = await raw("POST", cms("missing-ns"), configmap("c"), params=params)
        assert status == 404
        assert body["message"] == 'namespaces "missing-ns" not found'
    status, body, _ = await raw.apply(cms("missing-ns") + "/c", configmap("c"))
    assert status == 404


async def test_unknown_field_under_strict_validation_is_bad_request(raw: Raw, ns: str) -> None:
    body = {**configmap("c"), "bogus": 1}
    status, err, _ = await raw("POST", cms(ns), body, params={"fieldValidation": "Strict"})
    assert status == 400
    assert err["reason"] == "BadRequest"
    assert err["message"] == 'strict decoding error: unknown field "bogus"'
    status, obj, headers = await raw("POST", cms(ns), body, params={"fieldValidation": "Warn"})
    assert status == 201 and "bogus" not in obj
    assert "unknown field" in headers.get("Warning", "")


async def test_undecodable_body_and_kind_mismatch_are_bad_requests(raw: Raw, ns: str) -> None:
    status, body, _ = await raw("POST", cms(ns), "{not json")
    assert status == 400 and body["reason"] == "BadRequest"
    wrong = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
    status, body, _ = await raw("POST", cms(ns), wrong)
    assert status == 400


async def test_protobuf_body_is_unsupported_media_type(raw: Raw, ns: str) -> None:
    status, body, _ = await raw(
        "POST", cms(ns), b"\x00\x01", ctype="application/vnd.kubernetes.protobuf;type=garbage"
    )
    assert status in (400, 415)
    assert body["kind"] == "Status"


# ----------------------------------------------------------------------- finalizers


async def test_delete_with_finalizer_sets_deletion_timestamp_until_removed(
    raw: Raw, ns: str
) -> None:
    await raw("POST", cms(ns), configmap("held", finalizers=["example.com/x"]))
    status, obj, _ = await raw("DELETE", cms(ns) + "/held")
    assert status in (200, 202)
    assert obj["metadata"]["deletionTimestamp"]
    status, obj, _ = await raw("GET", cms(ns) + "/held")
    assert status == 200
    status, _, _ = await raw(
        "PATCH",
        cms(ns) + "/held",
        {"metadata": {"finalizers": None}},
        ctype="application/merge-patch+json",
    )
    assert status == 200
    status, _, _ = await raw("GET", cms(ns) + "/held")
    assert status == 404


async def test_delete_dry_run_keeps_the_object(raw: Raw, ns: str) -> None:
    await raw("POST", cms(ns), configmap("c"))
    status, _, _ = await raw("DELETE", cms(ns) + "/c", params={"dryRun": "All"})
    assert status == 200
    status, _, _ = await raw("GET", cms(ns) + "/c")
    assert status == 200


async def test_deleting_an_owner_deletes_its_dependents(
    raw: Raw, ns: str, kl: KubeliteHandle
) -> None:
    _, owner, _ = await raw("POST", cms(ns), configmap("owner"))
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
    }
    await raw("POST", cms(ns), configmap("dep", ownerReferences=[ref]))
    await raw("DELETE", cms(ns) + "/owner")

    async def gone() -> bool:
        return (await raw("GET", cms(ns) + "/dep"))[0] == 404

    from kubelite_helpers import await_until

    await await_until(gone)


# ----------------------------------------------------------------------- watches


async def test_watch_from_list_resource_version_sees_only_later_events(
    raw: Raw, ns: str, kl: KubeliteHandle
) -> None:
    await raw("POST", cms(ns), configmap("before"))
    _, lst, _ = await raw("GET", cms(ns))
    rv = lst["metadata"]["resourceVersion"]
    task = asyncio.create_task(watch_lines(kl, cms(ns), {"resourceVersion": rv}, 2))
    await raw("POST", cms(ns), configmap("after"))
    await raw("DELETE", cms(ns) + "/after")
    events = await task
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "after"),
        ("DELETED", "after"),
    ]


async def test_watch_resumes_from_a_resource_version(raw: Raw, ns: str, kl: KubeliteHandle) -> None:
    _, a, _ = await raw("POST", cms(ns), configmap("a"))
    await raw("POST", cms(ns), configmap("b"))
    await raw("PUT", cms(ns) + "/a", {**a, "data": {"x": "y"}})
    events = await watch_lines(
        kl, cms(ns), {"resourceVersion": a["metadata"]["resourceVersion"]}, 2
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "b"),
        ("MODIFIED", "a"),
    ]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs)


async def test_watch_from_too_old_resource_version_is_expired(kubelite_factory: Any) -> None:
    h = kubelite_factory(history=3)
    async with h.session() as s:
        for i in range(6):
            async with s.post(h.url + cms("default"), json=configmap(f"c{i}")) as r:
                assert r.status == 201
    events = await watch_lines(h, cms("default"), {"resourceVersion": "2"}, 1)
    assert events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["kind"] == "Status" and status["code"] == 410 and status["reason"] == "Expired"
    h.call(h.server.store.compact)
    events = await watch_lines(h, cms("default"), {"resourceVersion": "5"}, 1)
    assert events[0]["object"]["code"] == 410


async def test_watch_selectors_turn_label_changes_into_added_and_deleted(
    raw: Raw, ns: str, kl: KubeliteHandle
) -> None:
    _, c, _ = await raw("POST", cms(ns), configmap("c"))
    params = {"resourceVersion": c["metadata"]["resourceVersion"], "labelSelector": "pick=yes"}
    task = asyncio.create_task(watch_lines(kl, cms(ns), params, 2))
    await raw(
        "PATCH",
        cms(ns) + "/c",
        {"metadata": {"labels": {"pick": "yes"}}},
        ctype="application/merge-patch+json",
    )
    await raw(
        "PATCH",
        cms(ns) + "/c",
        {"metadata": {"labels": {"pick": "no"}}},
        ctype="application/merge-patch+json",
    )
    events = await task
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]


async def test_watch_list_sends_initial_events_then_a_bookmark(
    raw: Raw, ns: str, kl: KubeliteHandle
) -> None:
    await raw("POST", cms(ns), configmap("a"))
    await raw("POST", cms(ns), configmap("b"))
    params = {
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
        "allowWatchBookmarks": "true",
    }

    async def post_after_bookmark(events: list[dict[str, Any]]) -> None:
        if events[-1]["type"] == "BOOKMARK":  # initial events done: now a live one
            await raw("POST", cms(ns), configmap("c"))

    got = await watch_lines(kl, cms(ns), params, 4, on_event=post_after_bookmark)
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in got[:2]] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
    ]
    bookmark = got[2]
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert got[3]["type"] == "ADDED" and got[3]["object"]["metadata"]["name"] == "c"


async def test_watch_ends_after_timeout_seconds(raw: Raw, ns: str, kl: KubeliteHandle) -> None:
    _, lst, _ = await raw("GET", cms(ns))
    events = await watch_lines(
        kl,
        cms(ns),
        {"resourceVersion": lst["metadata"]["resourceVersion"], "timeoutSeconds": "1"},
        1,
    )
    assert events == []


async def test_periodic_bookmarks_carry_the_current_resource_version(kubelite_factory: Any) -> None:
    h = kubelite_factory(bookmark_interval=0.2)
    events = await watch_lines(
        h, cms("default"), {"resourceVersion": "0", "allowWatchBookmarks": "true"}, 1
    )
    assert events[0]["type"] == "BOOKMARK"
    assert int(events[0]["object"]["metadata"]["resourceVersion"]) > 0


async def test_health_and_metrics_endpoints_answer(raw: Raw, ns: str) -> None:
    await raw("POST", cms(ns), configmap("m"))
    for path in ("/healthz", "/readyz", "/livez"):
        status, body, _ = await raw("GET", path)
        assert status == 200 and body == "ok"
    status, text, _ = await raw("GET", "/metrics")
    assert status == 200
    assert 'kubelite_requests_total{code="201",verb="POST"}' in text
    assert "kubelite_objects " in text


async def test_services_get_a_cluster_ip(raw: Raw, ns: str) -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}},
    }
    status, obj, _ = await raw.apply(f"/api/v1/namespaces/{ns}/services/web", svc)
    assert status == 201
    assert obj["spec"]["clusterIP"].startswith("10.")
    assert obj["spec"]["clusterIPs"] == [obj["spec"]["clusterIP"]]
    _, again, _ = await raw.apply(f"/api/v1/namespaces/{ns}/services/web", svc)
    assert again["spec"]["clusterIP"] == obj["spec"]["clusterIP"]
    assert again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


async def test_immutable_fields_are_refused_with_field_is_immutable(raw: Raw, ns: str) -> None:
    cm = {**configmap("frozen", {"a": "1"}), "immutable": True}
    await raw.apply(cms(ns) + "/frozen", cm)
    status, body, _ = await raw.apply(cms(ns) + "/frozen", {**cm, "data": {"a": "2"}})
    assert status == 422
    assert "field is immutable when `immutable` is set" in body["message"]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "a:1"}]}
            }
        },
    }
    path = f"/apis/batch/v1/namespaces/{ns}/jobs/j"
    await raw.apply(path, job)
    job["spec"]["template"]["spec"]["containers"][0]["image"] = "a:2"
    status, body, _ = await raw.apply(path, job)
    assert (
        status == 422
        and "spec.template" in body["message"]
        and "field is immutable" in body["message"]
    )
    sts = deployment("db")
    sts["kind"] = "StatefulSet"
    sts["spec"]["serviceName"] = "db"
    spath = f"/apis/apps/v1/namespaces/{ns}/statefulsets/db"
    await raw.apply(spath, sts)
    sts["spec"]["serviceName"] = "other"
    status, body, _ = await raw.apply(spath, sts)
    assert status == 422 and "updates to statefulset spec for fields other than" in body["message"]
