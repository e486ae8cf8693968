"""kubernetes-asyncio 36 (typed and dynamic clients) against kubelite."""

from __future__ import annotations

import asyncio
from typing import Any

from kubelite_helpers import await_until, configmap, deployment
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.rest import ApiException

from fluxbus_kubelite.testing import KubeliteHandle


async def test_typed_client_creates_lists_and_reads_objects(kl: KubeliteHandle, ns: str) -> None:
    async with kl.api_client() as api:
        core = client.CoreV1Api(api)
        await core.create_namespaced_config_map(
            ns,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name="c", labels={"a": "b"}), data={"k": "v"}
            ),
        )
        lst = await core.list_namespaced_config_map(ns, label_selector="a=b")
        assert [i.metadata.name for i in lst.items] == ["c"]
        got = await core.read_namespaced_config_map("c", ns)
        assert got.data == {"k": "v"}
        assert got.metadata.managed_fields[0].manager


async def test_typed_client_sees_status_errors(kl: KubeliteHandle, ns: str) -> None:
    async with kl.api_client() as api:
        apps = client.AppsV1Api(api)
        try:
            await apps.read_namespaced_deployment("nope", ns)
        except ApiException as e:
            assert e.status == 404
        else:
            raise AssertionError("expected 404")


async def test_typed_client_server_side_apply_with_force_and_dry_run(
    kl: KubeliteHandle, ns: str
) -> None:
    async with kl.api_client() as api:
        apps = client.AppsV1Api(api)
        d = deployment("web")
        created = await apps.patch_namespaced_deployment(
            "web",
            ns,
            d,
            field_manager="fluxbus",
            force=True,
            _content_type="application/apply-patch+yaml",
        )
        assert created.spec.replicas == 2
        d["spec"]["replicas"] = 6
        dry = await apps.patch_namespaced_deployment(
            "web",
            ns,
            d,
            field_manager="fluxbus",
            dry_run="All",
            _content_type="application/apply-patch+yaml",
        )
        assert dry.spec.replicas == 6
        live = await apps.read_namespaced_deployment("web", ns)
        assert live.spec.replicas == 2


async def test_dynamic_client_discovers_and_applies(kl: KubeliteHandle, ns: str) -> None:
    async with kl.api_client() as api:
        dyn = await kl.dynamic_client(api)
        cms = await dyn.resources.get(api_version="v1", kind="ConfigMap")
        await dyn.server_side_apply(
            cms, body=configmap("d", {"a": "1"}), namespace=ns, field_manager="dyn"
        )
        got = await dyn.get(cms, name="d", namespace=ns)
        assert got.data.a == "1"
        deployments = await dyn.resources.get(api_version="apps/v1", kind="Deployment")
        assert deployments.namespaced


async def test_dynamic_client_finds_a_new_crd_kind(kl: KubeliteHandle, ns: str) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.dyn.example.com"},
        "spec": {
            "group": "dyn.example.com",
            "scope": "Namespaced",
            "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    async with kl.api_client() as api:
        dyn = await kl.dynamic_client(api)
        crds = await dyn.resources.get(
            api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
        )
        await dyn.server_side_apply(crds, body=crd, field_manager="dyn")
        dyn = await kl.dynamic_client(api)
        await dyn.resources.invalidate_cache()
        things = await dyn.resources.get(api_version="dyn.example.com/v1alpha1", kind="Thing")
        body = {
            "apiVersion": "dyn.example.com/v1alpha1",
            "kind": "Thing",
            "metadata": {"name": "t"},
            "spec": {"any": {"thing": [1, 2]}},
        }
        await dyn.server_side_apply(things, body=body, namespace=ns, field_manager="dyn")
        got = await dyn.get(things, name="t", namespace=ns)
        assert got.spec.any.thing == [1, 2]
        assert got.metadata.generation == 1


async def test_watch_stream_delivers_events_to_the_typed_client(
    kl: KubeliteHandle, ns: str
) -> None:
    seen: list[tuple[str, str]] = []
    async with kl.api_client() as api:
        core = client.CoreV1Api(api)
        lst = await core.list_namespaced_config_map(ns)

        async def consume() -> None:
            w = watch.Watch()
            async with w.stream(
                core.list_namespaced_config_map,
                ns,
                resource_version=lst.metadata.resource_version,
                timeout_seconds=10,
            ) as stream:
                async for ev in stream:
                    seen.append((ev["type"], ev["object"].metadata.name))
                    if len(seen) == 2:
                        break

        task = asyncio.create_task(consume())
        await core.create_namespaced_config_map(
            ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w1"))
        )
        await core.delete_namespaced_config_map("w1", ns)
        await asyncio.wait_for(task, 10)
    assert seen == [("ADDED", "w1"), ("DELETED", "w1")]


async def test_many_concurrent_applies_and_watches_keep_order(kl: KubeliteHandle, ns: str) -> None:
    async with kl.api_client() as api:
        core = client.CoreV1Api(api)
        lst = await core.list_namespaced_config_map(ns)
        start = lst.metadata.resource_version
        streams: list[list[Any]] = [[] for _ in range(4)]

        async def consume(events: list[Any]) -> None:
            w = watch.Watch()
            async with w.stream(
                core.list_namespaced_config_map,
                ns,
                resource_version=start,
                timeout_seconds=20,
            ) as stream:
                async for ev in stream:
                    events.append(ev)
                    if len(events) == 64:
                        break

        watchers = [asyncio.create_task(consume(events)) for events in streams]

        async def apply(i: int) -> None:
            for v in range(4):
                await core.patch_namespaced_config_map(
                    f"c{i}",
                    ns,
                    configmap(f"c{i}", {"v": str(v)}),
                    field_manager="m",
                    _content_type="application/apply-patch+yaml",
                )

        await asyncio.gather(*(apply(i) for i in range(16)))
        await asyncio.wait_for(asyncio.gather(*watchers), 20)
        for events in streams:
            rvs = [int(e["object"].metadata.resource_version) for e in events]
            assert rvs == sorted(rvs) and len(set(rvs)) == 64
        final = await core.list_namespaced_config_map(ns)
        assert sorted(i.data["v"] for i in final.items) == ["3"] * 16

        async def all_there() -> bool:
            return len((await core.list_namespaced_config_map(ns)).items) == 16

        await await_until(all_there)


async def test_embedded_server_and_kubeconfig_loading_work_in_one_loop(tmp_path: Any) -> None:
    from kubernetes_asyncio import config

    from fluxbus_kubelite import KubeliteServer

    kc = tmp_path / "kc"
    async with KubeliteServer(port=0, kubeconfig=kc, simulate=False) as srv:
        assert srv.url.startswith("https://127.0.0.1:")
        api = await config.new_client_from_config(config_file=str(kc))
        try:
            namespaces = await client.CoreV1Api(api).list_namespace()
            assert "default" in [n.metadata.name for n in namespaces.items]
        finally:
            await api.close()
