"""Charts offline through the worker processes: render, chart_info, package."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fluxbus_helmsdk import ChartLoadError, HelmEngine, RenderError, ValuesError
from fluxbus_helmsdk.testing import make_chart, package_chart


def read(path: str | Path) -> bytes:
    return Path(path).read_bytes()


async def test_render_fills_the_templates_with_values_and_the_release(
    helm_engine: HelmEngine, demo_chart: bytes
) -> None:
    rendered = await helm_engine.render(
        demo_chart, {"replicaCount": 3}, release_name="web", namespace="apps", revision=2
    )
    deployment = yaml.safe_load(rendered["demo/templates/deployment.yaml"])
    configmap = yaml.safe_load(rendered["demo/templates/configmap.yaml"])
    assert deployment["metadata"]["name"] == "web"
    assert deployment["spec"]["replicas"] == 3
    assert configmap["data"] == {"replicaCount": "3", "tag": "1.27.0", "revision": "2"}


@pytest.mark.parametrize(
    ("templates", "values", "template", "words"),
    [
        pytest.param(None, {"fail": True}, "demo/templates/fail.yaml", "ask this chart to fail",
                     id="fail"),
        pytest.param(None, {"greeting": None}, "demo/templates/greeting.yaml",
                     "greeting is required", id="required"),
        pytest.param({"nil.yaml": "a: {{ .Values.missing.deeper }}\n"}, {},
                     "demo/templates/nil.yaml", "nil pointer", id="nil-pointer"),
        pytest.param({"parse.yaml": "a: {{ nosuchfunction }}\n"}, {},
                     "demo/templates/parse.yaml", "nosuchfunction", id="parse-error"),
    ],
)  # fmt: skip
async def test_a_render_error_names_the_failing_template(
    helm_engine: HelmEngine,
    tmp_path: Path,
    templates: dict[str, str] | None,
    values: dict[str, object],
    template: str,
    words: str,
) -> None:
    chart = package_chart(make_chart(tmp_path, "demo", templates=templates), tmp_path / "dist")
    with pytest.raises(RenderError) as caught:
        await helm_engine.render(chart.read_bytes(), values, release_name="r", namespace="n")
    assert caught.value.template == template
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_values_failing_the_schema_are_a_values_error(
    helm_engine: HelmEngine, tmp_path: Path
) -> None:
    chart_dir = make_chart(tmp_path, "demo")
    schema = '{"type": "object", "properties": {"replicaCount": {"type": "integer"}}}'
    (chart_dir / "values.schema.json").write_text(schema)
    chart = package_chart(chart_dir, tmp_path / "dist").read_bytes()
    with pytest.raises(ValuesError, match="replicaCount"):
        await helm_engine.render(chart, {"replicaCount": "many"}, release_name="r", namespace="n")


async def test_chart_info_reads_the_metadata_and_default_values(
    helm_engine: HelmEngine, demo_chart: bytes
) -> None:
    info = await helm_engine.chart_info(demo_chart)
    assert (info.name, info.version, info.app_version) == ("demo", "0.1.0", "1.0.0")
    assert info.values["image"] == {"repository": "nginx", "tag": "1.27.0"}
    assert info.dependencies == []


@pytest.mark.parametrize(
    "data", [pytest.param(b"not a chart", id="junk"), pytest.param(b"", id="empty")]
)
async def test_bytes_that_are_no_chart_are_a_chart_load_error(
    helm_engine: HelmEngine, data: bytes
) -> None:
    with pytest.raises(ChartLoadError):
        await helm_engine.chart_info(data)


async def test_package_sets_the_version_and_replaces_values_yaml(
    helm_engine: HelmEngine, tmp_path: Path
) -> None:
    chart_dir = make_chart(tmp_path / "src", "demo")
    path = await helm_engine.package(
        str(chart_dir),
        str(tmp_path / "out"),
        version="1.2.3+abcdef",
        values_yaml="replicaCount: 7\n",
    )
    assert Path(path).name == "demo-1.2.3+abcdef.tgz"
    info = await helm_engine.chart_info(read(path))
    assert info.version == "1.2.3+abcdef"
    assert info.values == {"replicaCount": 7}
    assert yaml.safe_load((chart_dir / "values.yaml").read_text())["replicaCount"] == 1


async def test_packaging_a_directory_without_chart_yaml_is_a_chart_load_error(
    helm_engine: HelmEngine, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ChartLoadError, match=r"Chart\.yaml"):
        await helm_engine.package(str(tmp_path / "empty"), str(tmp_path / "out"))
