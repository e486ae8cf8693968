"""The helm service's settings from the environment."""

from __future__ import annotations

import pytest

from fluxbus_helm.settings import HelmSettings


def test_settings_read_worker_limits_and_concurrency():
    s = HelmSettings.from_env(
        {
            "FLUXBUS_HELM_WORKERS": "3",
            "FLUXBUS_HELM_WORKER_MEMORY": "1Gi",
            "FLUXBUS_HELM_WORKER_TIMEOUT": "90",
            "FLUXBUS_HELM_DEFAULT_SERVICE_ACCOUNT": "deployer",
        }
    )
    assert (s.workers, s.worker_memory, s.worker_timeout) == (3, 2**30, 90.0)
    assert s.max_concurrent == 3  # default: one release per worker
    assert s.default_service_account == "deployer"
    assert HelmSettings.from_env({"FLUXBUS_HELM_CONCURRENT": "8"}).max_concurrent == 8


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("FLUXBUS_HELM_WORKERS", id="workers"),
        pytest.param("FLUXBUS_HELM_WORKER_MEMORY", id="memory"),
    ],
)
def test_a_malformed_setting_is_named(name: str):
    with pytest.raises(ValueError, match=name):
        HelmSettings.from_env({name: "lots"})
