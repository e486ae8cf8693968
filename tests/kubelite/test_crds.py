"""Custom resources: discovery at once, versions, list types from the schema, deletion."""

from __future__ import annotations

from typing import Any

from kubelite_helpers import Raw, await_until, managers


def crd(
    group: str, versions: list[str] | None = None, schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    schema = schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    vs = versions or ["v1"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"tools.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "tools", "singular": "tool", "kind": "Tool", "shortNames": ["tl"]},
            "versions": [
                {
                    "name": v,
                    "served": True,
                    "storage": i == 0,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                }
                for i, v in enumerate(vs)
            ],
        },
    }


CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


async def test_applying_a_crd_adds_discovery_at_once_and_establishes_it(raw: Raw) -> None:
    status, _, _ = await raw.apply(f"{CRDS}/tools.disc.example.com", crd("disc.example.com"))
    assert status == 201
    status, res, _ = await raw("GET", "/apis/disc.example.com/v1")
    assert status == 200
    tools = next(r for r in res["resources"] if r["name"] == "tools")
    assert tools["kind"] == "Tool" and tools["shortNames"] == ["tl"]

    async def established() -> bool:
        _, got, _ = await raw("GET", f"{CRDS}/tools.disc.example.com")
        conds = {c["type"]: c["status"] for c in got.get("status", {}).get("conditions", [])}
        return conds.get("Established") == "True" and conds.get("NamesAccepted") == "True"

    await await_until(established)


async def test_custom_resources_are_served_in_every_version(raw: Raw, ns: str) -> None:
    await raw.apply(f"{CRDS}/tools.multi.example.com", crd("multi.example.com", ["v1", "v1beta1"]))
    body = {
        "apiVersion": "multi.example.com/v1",
        "kind": "Tool",
        "metadata": {"name": "t"},
        "spec": {"a": 1},
    }
    status, _, _ = await raw.apply(f"/apis/multi.example.com/v1/namespaces/{ns}/tools/t", body)
    assert status == 201
    status, beta, _ = await raw("GET", f"/apis/multi.example.com/v1beta1/namespaces/{ns}/tools/t")
    assert status == 200
    assert beta["apiVersion"] == "multi.example.com/v1beta1" and beta["spec"] == {"a": 1}
    _, groups, _ = await raw("GET", "/apis")
    group = next(g for g in groups["groups"] if g["name"] == "multi.example.com")
    assert group["preferredVersion"]["version"] == "v1"


async def test_crd_schema_list_types_drive_apply_merging(raw: Raw, ns: str) -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "items": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["id"],
                        "items": {
                            "type": "object",
                            "properties": {"id": {"type": "string"}, "v": {"type": "integer"}},
                        },
                    },
                    "tags": {
                        "type": "array",
                        "x-kubernetes-list-type": "set",
                        "items": {"type": "string"},
                    },
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            }
        },
    }
    await raw.apply(f"{CRDS}/tools.lists.example.com", crd("lists.example.com", schema=schema))
    path = f"/apis/lists.example.com/v1/namespaces/{ns}/tools/t"

    def tool(spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "lists.example.com/v1",
            "kind": "Tool",
            "metadata": {"name": "t"},
            "spec": spec,
        }

    await raw.apply(
        path,
        tool({"items": [{"id": "a", "v": 1}], "tags": ["x"], "free": {"m": {"k": 1}, "l": [1]}}),
        "alice",
    )
    _, obj, _ = await raw.apply(
        path, tool({"items": [{"id": "b", "v": 2}], "tags": ["y"], "free": {"m": {"j": 2}}}), "bob"
    )
    assert obj["spec"]["items"] == [{"id": "a", "v": 1}, {"id": "b", "v": 2}]
    assert obj["spec"]["tags"] == ["x", "y"]
    assert obj["spec"]["free"] == {"m": {"k": 1, "j": 2}, "l": [1]}
    bob = managers(obj)["bob"]["fieldsV1"]["f:spec"]
    assert bob["f:items"] == {'k:{"id":"b"}': {".": {}, "f:id": {}, "f:v": {}}}
    assert bob["f:tags"] == {'v:"y"': {}}
    assert bob["f:free"] == {"f:m": {"f:j": {}}}


async def test_deleting_a_crd_deletes_its_resources_and_discovery(raw: Raw, ns: str) -> None:
    await raw.apply(f"{CRDS}/tools.gone.example.com", crd("gone.example.com"))
    body = {"apiVersion": "gone.example.com/v1", "kind": "Tool", "metadata": {"name": "t"}}
    await raw.apply(f"/apis/gone.example.com/v1/namespaces/{ns}/tools/t", body)
    status, _, _ = await raw("DELETE", f"{CRDS}/tools.gone.example.com")
    assert status == 200

    async def gone() -> bool:
        return (await raw("GET", "/apis/gone.example.com/v1"))[0] == 404

    await await_until(gone)
    await raw.apply(f"{CRDS}/tools.gone.example.com", crd("gone.example.com"))
    status, lst, _ = await raw("GET", f"/apis/gone.example.com/v1/namespaces/{ns}/tools")
    assert status == 200 and lst["items"] == []


async def test_custom_resource_status_subresource_keeps_spec_and_generation(
    raw: Raw, ns: str
) -> None:
    await raw.apply(f"{CRDS}/tools.stat.example.com", crd("stat.example.com"))
    path = f"/apis/stat.example.com/v1/namespaces/{ns}/tools/t"
    body = {
        "apiVersion": "stat.example.com/v1",
        "kind": "Tool",
        "metadata": {"name": "t"},
        "spec": {"a": 1},
        "status": {"ignored": True},
    }
    _, obj, _ = await raw.apply(path, body)
    assert "status" not in obj and obj["metadata"]["generation"] == 1
    status, obj, _ = await raw(
        "PATCH",
        path + "/status",
        {"status": {"ready": True}, "spec": {"a": 2}},
        ctype="application/merge-patch+json",
        params={"fieldManager": "ctrl"},
    )
    assert status == 200
    assert obj["status"] == {"ready": True} and obj["spec"] == {"a": 1}
    assert obj["metadata"]["generation"] == 1
    status, obj, _ = await raw(
        "PATCH", path, {"spec": {"a": 3}}, ctype="application/merge-patch+json"
    )
    assert obj["metadata"]["generation"] == 2


async def test_strategic_merge_patch_is_unsupported_for_custom_resources(raw: Raw, ns: str) -> None:
    await raw.apply(f"{CRDS}/tools.smp.example.com", crd("smp.example.com"))
    path = f"/apis/smp.example.com/v1/namespaces/{ns}/tools/t"
    await raw.apply(
        path, {"apiVersion": "smp.example.com/v1", "kind": "Tool", "metadata": {"name": "t"}}
    )
    status, body, _ = await raw(
        "PATCH", path, {"spec": {}}, ctype="application/strategic-merge-patch+json"
    )
    assert status == 415 and body["reason"] == "UnsupportedMediaType"


async def test_review_resources_allow_everything(raw: Raw) -> None:
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "create", "resource": "pods"}},
    }
    status, out, _ = await raw(
        "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body
    )
    assert status == 201 and out["status"]["allowed"] is True


async def test_custom_resources_are_validated_against_the_crd_schema(raw: Raw, ns: str) -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "size": {"type": "integer", "minimum": 1, "maximum": 10},
                    "mode": {"type": "string", "enum": ["fast", "slow"]},
                    "name": {"type": "string", "pattern": "^[a-z]+$"},
                },
            }
        },
    }
    await raw.apply(f"{CRDS}/tools.valid.example.com", crd("valid.example.com", schema=schema))
    path = f"/apis/valid.example.com/v1/namespaces/{ns}/tools/t"

    def tool(spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "valid.example.com/v1",
            "kind": "Tool",
            "metadata": {"name": "t"},
            "spec": spec,
        }

    status, body, _ = await raw.apply(path, tool({"size": "big"}))
    assert status == 422 and body["reason"] == "Invalid"
    assert body["details"]["causes"][0] == {
        "reason": "FieldValueInvalid",
        "message": 'Invalid value: "string": spec.size in body must be of type integer: "string"',
        "field": "spec.size",
    }
    status, body, _ = await raw.apply(path, tool({"mode": "fast"}))
    assert status == 422
    assert {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.size",
    } in body["details"]["causes"]
    status, body, _ = await raw.apply(path, tool({"size": 11, "mode": "warp", "name": "X"}))
    assert status == 422
    fields = sorted(c["field"] for c in body["details"]["causes"])
    assert fields == ["spec.mode", "spec.name", "spec.size"]
    assert 'Unsupported value: "warp": supported values: "fast", "slow"' in body["message"]
    status, _, _ = await raw.apply(path, tool({"size": 3, "mode": "slow", "name": "ok"}))
    assert status == 201


async def test_builtin_field_of_the_wrong_type_is_a_bad_request(raw: Raw, ns: str) -> None:
    from kubelite_helpers import deployment

    d = deployment("web")
    d["spec"]["replicas"] = "two"
    status, body, _ = await raw.apply(f"/apis/apps/v1/namespaces/{ns}/deployments/web", d)
    assert status == 400
    assert body["message"] == (
        "failed to create typed patch object (apps/v1, Kind=Deployment): "
        ".spec.replicas: expected numeric (int or float), got string"
    )


async def test_printer_columns_of_a_crd_shape_kubectl_get(raw: Raw, ns: str, kl: Any) -> None:
    definition = crd("cols.example.com")
    definition["spec"]["versions"][0]["additionalPrinterColumns"] = [
        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    await raw.apply(f"{CRDS}/tools.cols.example.com", definition)
    body = {
        "apiVersion": "cols.example.com/v1",
        "kind": "Tool",
        "metadata": {"name": "t"},
        "spec": {"size": 7},
    }
    await raw.apply(f"/apis/cols.example.com/v1/namespaces/{ns}/tools/t", body)
    res = kl.kubectl("-n", ns, "get", "tools.cols.example.com")
    assert res.returncode == 0, res.stderr
    header, row = res.stdout.splitlines()[:2]
    assert header.split() == ["NAME", "SIZE", "AGE"]
    assert row.split()[:2] == ["t", "7"]


async def test_crd_schema_defaults_fill_absent_fields(raw: Raw, ns: str) -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "default": {},
                "properties": {
                    "interval": {"type": "string", "default": "5m"},
                    "prune": {"type": "boolean", "default": False},
                    "items": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"weight": {"type": "integer", "default": 1}},
                        },
                    },
                    "nested": {
                        "type": "object",
                        "properties": {"x": {"type": "integer", "default": 3}},
                    },
                },
            }
        },
    }
    await raw.apply(
        f"{CRDS}/tools.defaults.example.com", crd("defaults.example.com", schema=schema)
    )
    path = f"/apis/defaults.example.com/v1/namespaces/{ns}/tools"
    body = {
        "apiVersion": "defaults.example.com/v1",
        "kind": "Tool",
        "metadata": {"name": "t"},
        "spec": {"interval": "1m", "items": [{}, {"weight": 5}]},
    }
    _, obj, _ = await raw.apply(f"{path}/t", body)
    assert obj["spec"] == {
        "interval": "1m",
        "prune": False,
        "items": [{"weight": 1}, {"weight": 5}],
    }
    bare = {"apiVersion": "defaults.example.com/v1", "kind": "Tool", "metadata": {"name": "bare"}}
    _, obj, _ = await raw.apply(f"{path}/bare", bare)
    assert obj["spec"] == {"interval": "5m", "prune": False}
    _, again, _ = await raw.apply(f"{path}/bare", bare)
    assert again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
