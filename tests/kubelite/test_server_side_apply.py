"""Server-side apply rules of kubelite.md, one test each, over raw HTTP."""

from __future__ import annotations

from kubelite_helpers import Raw, configmap, deployment, managers


def cm_path(ns: str, name: str) -> str:
    return f"/api/v1/namespaces/{ns}/configmaps/{name}"


def deploy_path(ns: str, name: str, sub: str = "") -> str:
    return f"/apis/apps/v1/namespaces/{ns}/deployments/{name}" + (f"/{sub}" if sub else "")


async def test_apply_creates_the_object_with_201_and_an_apply_entry(raw: Raw, ns: str) -> None:
    status, obj, _ = await raw.apply(cm_path(ns, "c"), configmap("c", {"a": "1"}), "alice")
    assert status == 201
    entry = managers(obj)["alice"]
    assert entry["operation"] == "Apply"
    assert entry["fieldsType"] == "FieldsV1"
    assert entry["apiVersion"] == "v1"
    assert entry["fieldsV1"] == {"f:data": {"f:a": {}}}
    status, _, _ = await raw.apply(cm_path(ns, "c"), configmap("c", {"a": "1"}), "alice")
    assert status == 200


async def test_apply_without_field_manager_is_invalid(raw: Raw, ns: str) -> None:
    status, body, _ = await raw(
        "PATCH", cm_path(ns, "c"), configmap("c"), ctype="application/apply-patch+yaml"
    )
    assert status == 422
    assert body["reason"] == "Invalid"
    assert "fieldManager" in body["message"]


async def test_apply_removes_field_the_manager_stopped_applying(raw: Raw, ns: str) -> None:
    await raw.apply(cm_path(ns, "c"), configmap("c", {"a": "1", "b": "2"}, labels={"x": "1"}))
    _, obj, _ = await raw.apply(cm_path(ns, "c"), configmap("c", {"a": "1"}))
    assert obj["data"] == {"a": "1"}
    assert "labels" not in obj["metadata"]
    assert managers(obj)["test"]["fieldsV1"] == {"f:data": {"f:a": {}}}


async def test_apply_keeps_field_another_manager_still_owns(raw: Raw, ns: str) -> None:
    await raw.apply(cm_path(ns, "c"), configmap("c", {"a": "1", "b": "2"}), "alice")
    await raw.apply(cm_path(ns, "c"), configmap("c", {"b": "2"}), "bob")
    _, obj, _ = await raw.apply(cm_path(ns, "c"), configmap("c", {"a": "1"}), "alice")
    assert obj["data"] == {"a": "1", "b": "2"}
    assert managers(obj)["bob"]["fieldsV1"] == {"f:data": {"f:b": {}}}


async def test_apply_of_same_value_by_second_manager_shares_ownership(raw: Raw, ns: str) -> None:
    await raw.apply(cm_path(ns, "c"), configmap("c", {"a": "1"}), "alice")
    status, obj, _ = await raw.apply(cm_path(ns, "c"), configmap("c", {"a": "1"}), "bob")
    assert status == 200
    m = managers(obj)
    assert m["alice"]["fieldsV1"] == {"f:data": {"f:a": {}}}
    assert m["bob"]["fieldsV1"] == {"f:data": {"f:a": {}}}


async def test_apply_of_different_value_conflicts_with_message_and_causes(
    raw: Raw, ns: str
) -> None:
    await raw.apply(deploy_path(ns, "web"), deployment("web", replicas=2), "alice")
    status, body, _ = await raw.apply(deploy_path(ns, "web"), deployment("web", replicas=3), "bob")
    assert status == 409
    assert body["kind"] == "Status"
    assert body["status"] == "Failure"
    assert body["reason"] == "Conflict"
    assert body["message"] == 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas'
    assert body["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "alice"',
            "field": ".spec.replicas",
        }
    ]


async def test_conflict_with_an_update_manager_names_its_api_version(raw: Raw, ns: str) -> None:
    await raw.apply(deploy_path(ns, "web"), deployment("web", replicas=2), "alice")
    status, _, _ = await raw(
        "PATCH",
        deploy_path(ns, "web"),
        {"spec": {"replicas": 4}},
        ctype="application/merge-patch+json",
        params={"fieldManager": "scaler"},
    )
    assert status == 200
    status, body, _ = await raw.apply(
        deploy_path(ns, "web"), deployment("web", replicas=2), "alice"
    )
    assert status == 409
    assert body["message"] == (
        'Apply failed with 1 conflict: conflict with "scaler" using apps/v1: .spec.replicas'
    )


async def test_forced_apply_takes_the_field_from_the_other_manager(raw: Raw, ns: str) -> None:
    await raw.apply(deploy_path(ns, "web"), deployment("web", replicas=2), "alice")
    status, obj, _ = await raw.apply(
        deploy_path(ns, "web"), deployment("web", replicas=3), "bob", force="true"
    )
    assert status == 200
    assert obj["spec"]["replicas"] == 3
    m = managers(obj)
    assert "f:replicas" not in m["alice"]["fieldsV1"]["f:spec"]
    assert "f:replicas" in m["bob"]["fieldsV1"]["f:spec"]


async def test_noop_apply_keeps_resource_version_and_time(raw: Raw, ns: str) -> None:
    _, first, _ = await raw.apply(deploy_path(ns, "web"), deployment("web"), "alice")
    _, again, _ = await raw.apply(deploy_path(ns, "web"), deployment("web"), "alice")
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert again["metadata"]["managedFields"] == first["metadata"]["managedFields"]


async def test_generation_moves_on_spec_changes_only(raw: Raw, ns: str) -> None:
    _, obj, _ = await raw.apply(deploy_path(ns, "web"), deployment("web"), "alice")
    assert obj["metadata"]["generation"] == 1
    labelled = deployment("web")
    labelled["metadata"]["labels"] = {"team": "a"}
    _, obj, _ = await raw.apply(deploy_path(ns, "web"), labelled, "alice")
    assert obj["metadata"]["generation"] == 1
    labelled["spec"]["replicas"] = 5
    _, obj, _ = await raw.apply(deploy_path(ns, "web"), labelled, "alice")
    assert obj["metadata"]["generation"] == 2


async def test_configmap_has_no_generation(raw: Raw, ns: str) -> None:
    _, obj, _ = await raw.apply(cm_path(ns, "c"), configmap("c", {"a": "1"}))
    assert "generation" not in obj["metadata"]


async def test_dry_run_apply_shows_would_be_generation_but_persists_nothing(
    raw: Raw, ns: str
) -> None:
    await raw.apply(deploy_path(ns, "web"), deployment("web"), "alice")
    status, dry, _ = await raw.apply(
        deploy_path(ns, "web"), deployment("web", replicas=7), "alice", dryRun="All"
    )
    assert status == 200
    assert dry["spec"]["replicas"] == 7
    assert dry["metadata"]["generation"] == 2
    _, live, _ = await raw("GET", deploy_path(ns, "web"))
    assert live["spec"]["replicas"] == 2
    assert live["metadata"]["generation"] == 1
    # a ConfigMap has no simulated status writer: its resourceVersion must not move
    _, cm, _ = await raw.apply(cm_path(ns, "c"), configmap("c", {"a": "1"}))
    status, dry_cm, _ = await raw.apply(cm_path(ns, "c"), configmap("c", {"a": "2"}), dryRun="All")
    assert status == 200 and dry_cm["data"] == {"a": "2"}
    _, live_cm, _ = await raw("GET", cm_path(ns, "c"))
    assert live_cm == cm


async def test_status_in_main_endpoint_apply_is_ignored(raw: Raw, ns: str) -> None:
    d = deployment("web")
    d["status"] = {"replicas": 99}
    _, obj, _ = await raw.apply(deploy_path(ns, "web"), d, "alice")
    assert obj.get("status", {}).get("replicas") != 99
    assert "f:status" not in managers(obj)["alice"]["fieldsV1"]


async def test_status_subresource_apply_changes_only_status(raw: Raw, ns: str) -> None:
    await raw.apply(deploy_path(ns, "web"), deployment("web"), "alice")
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 9},
        "status": {"replicas": 42},
    }
    # force: the simulated controller may already own status.replicas
    status, obj, _ = await raw.apply(
        deploy_path(ns, "web", "status"), body, "statusbot", force="true"
    )
    assert status == 200
    assert obj["status"]["replicas"] == 42
    assert obj["spec"]["replicas"] == 2
    entry = managers(obj)["statusbot"]
    assert entry["subresource"] == "status"
    assert entry["fieldsV1"] == {"f:status": {"f:replicas": {}}}
    assert obj["metadata"]["generation"] == 1


async def test_apply_merges_keyed_lists_by_key(raw: Raw, ns: str) -> None:
    d = deployment("web", replicas=None)
    d["spec"]["template"]["spec"]["containers"] = [
        {"name": "a", "image": "a:1"},
        {"name": "b", "image": "b:1"},
    ]
    await raw.apply(deploy_path(ns, "web"), d, "alice")
    sidecar = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "c:1"}]}}},
    }
    _, obj, _ = await raw.apply(deploy_path(ns, "web"), sidecar, "bob")
    names = [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]]
    assert names == ["a", "b", "c"]
    fields = managers(obj)["bob"]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert fields == {'k:{"name":"c"}': {".": {}, "f:image": {}, "f:name": {}}}


async def test_container_ports_are_keyed_by_port_and_defaulted_protocol(raw: Raw, ns: str) -> None:
    d = deployment("web")
    d["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    _, obj, _ = await raw.apply(deploy_path(ns, "web"), d, "alice")
    c = managers(obj)["alice"]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    ports = c['k:{"name":"main"}']["f:ports"]
    assert list(ports) == ['k:{"containerPort":80,"protocol":"TCP"}']


async def test_atomic_lists_are_replaced_whole(raw: Raw, ns: str) -> None:
    d = deployment("web")
    d["spec"]["template"]["spec"]["containers"][0]["args"] = ["a", "b"]
    await raw.apply(deploy_path(ns, "web"), d, "alice")
    d["spec"]["template"]["spec"]["containers"][0]["args"] = ["c"]
    _, obj, _ = await raw.apply(deploy_path(ns, "web"), d, "alice")
    assert obj["spec"]["template"]["spec"]["containers"][0]["args"] == ["c"]
    c = managers(obj)["alice"]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert c['k:{"name":"main"}']["f:args"] == {}


async def test_label_selector_is_an_atomic_leaf(raw: Raw, ns: str) -> None:
    _, obj, _ = await raw.apply(deploy_path(ns, "web"), deployment("web"), "alice")
    assert managers(obj)["alice"]["fieldsV1"]["f:spec"]["f:selector"] == {}


async def test_finalizers_are_a_set(raw: Raw, ns: str) -> None:
    cm = configmap("c", finalizers=["example.com/a"])
    _, obj, _ = await raw.apply(cm_path(ns, "c"), cm, "alice")
    cm2 = configmap("c", finalizers=["example.com/b"])
    _, obj, _ = await raw.apply(cm_path(ns, "c"), cm2, "bob")
    assert obj["metadata"]["finalizers"] == ["example.com/a", "example.com/b"]
    assert managers(obj)["bob"]["fieldsV1"] == {
        "f:metadata": {"f:finalizers": {'v:"example.com/b"': {}}}
    }
    await raw(
        "PATCH",
        cm_path(ns, "c"),
        {"metadata": {"finalizers": None}},
        ctype="application/merge-patch+json",
    )


async def test_update_operations_take_ownership_of_what_they_change(raw: Raw, ns: str) -> None:
    await raw.apply(cm_path(ns, "c"), configmap("c", {"a": "1"}), "alice")
    status, obj, _ = await raw(
        "PATCH",
        cm_path(ns, "c"),
        {"data": {"a": "2", "b": "3"}},
        ctype="application/merge-patch+json",
        params={"fieldManager": "editor"},
    )
    assert status == 200
    m = managers(obj)
    assert "alice" not in m
    assert m["editor"]["operation"] == "Update"
    assert m["editor"]["fieldsV1"] == {"f:data": {"f:a": {}, "f:b": {}}}


async def test_apply_yaml_and_json_bodies_are_both_accepted(raw: Raw, ns: str) -> None:
    import json

    status, _, _ = await raw.apply(cm_path(ns, "j"), json.dumps(configmap("j", {"a": "1"})))
    assert status == 201


async def test_apply_with_unknown_field_under_strict_is_bad_request(raw: Raw, ns: str) -> None:
    d = deployment("web")
    d["spec"]["bogus"] = True
    status, body, _ = await raw.apply(deploy_path(ns, "web"), d, "alice", fieldValidation="Strict")
    assert status == 400
    assert body["reason"] == "BadRequest"
    assert ".spec.bogus: field not declared in schema" in body["message"]


async def test_scale_makes_a_later_apply_of_replicas_conflict(raw: Raw, ns: str) -> None:
    await raw.apply(deploy_path(ns, "web"), deployment("web", replicas=2), "alice")
    status, scale, _ = await raw("GET", deploy_path(ns, "web", "scale"))
    assert status == 200
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"]["replicas"] == 2
    status, scale, _ = await raw(
        "PATCH",
        deploy_path(ns, "web", "scale"),
        {"spec": {"replicas": 4}},
        ctype="application/merge-patch+json",
        params={"fieldManager": "scaler"},
    )
    assert status == 200 and scale["spec"]["replicas"] == 4
    status, body, _ = await raw.apply(
        deploy_path(ns, "web"), deployment("web", replicas=3), "alice"
    )
    assert status == 409
    assert body["details"]["causes"][0]["field"] == ".spec.replicas"
    assert "scaler" in body["message"]


async def test_apply_accepts_yaml_and_rejects_undecodable_bodies(raw: Raw, ns: str) -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  k: v\n"
    status, obj, _ = await raw.apply(cm_path(ns, "y"), text)
    assert status == 201 and obj["data"] == {"k": "v"}
    status, body, _ = await raw.apply(cm_path(ns, "y"), "a: [unclosed")
    assert status == 400 and body["reason"] == "BadRequest"
    status, body, _ = await raw.apply(cm_path(ns, "y"), "just a string")
    assert status == 400


async def test_fields_no_manager_ever_applied_stay_after_apply(raw: Raw, ns: str) -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "labels": {"a": "1"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    path = f"/api/v1/namespaces/{ns}/services/web"
    _, first, _ = await raw.apply(path, svc, "alice")
    # defaults the server filled in: owned by nobody
    assert first["spec"]["type"] == "ClusterIP" and first["spec"]["clusterIP"]
    assert first["spec"]["ports"][0]["protocol"] == "TCP"
    svc["metadata"]["labels"] = {"b": "2"}
    _, second, _ = await raw.apply(path, svc, "alice")
    assert second["metadata"]["labels"] == {"b": "2"}
    assert second["spec"]["type"] == "ClusterIP"
    assert second["spec"]["clusterIP"] == first["spec"]["clusterIP"]
    assert second["spec"]["ports"][0]["protocol"] == "TCP"
