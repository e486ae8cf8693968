"""The NATS roles as data: the documented table is the enforced one, no one but
the admin subscribes beyond its own inbox, the dashboard never reaches the
Secrets, writes stay within the kinds a role owns; the rendered nats-server
configuration is one nats-server accepts; credentials files of every form are
understood and never quoted in an error."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fluxbus_cli.natsconf import write_config
from fluxbus_common import subjects
from fluxbus_common.bus import Bus
from fluxbus_common.bus.credentials import auth_options
from fluxbus_common.natsauth import ACCESS, Role, ServerTLS, access_table, permissions
from fluxbus_common.ports import BusError
from fluxbus_common.settings import BusSettings
from fluxbus_common.testing.plugin import NatsServer, nats_server_binary
from fluxbus_git.testing.tls import TestCA

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def test_the_documented_table_is_the_enforced_one():
    assert access_table() in DOC.read_text()


@pytest.mark.parametrize("role", [pytest.param(r, id=r.value) for r in Role if r != Role.ADMIN])
def test_a_user_subscribes_only_to_its_own_inbox(role: Role):
    assert permissions(role, "UABC").subscribe == ("_INBOX_UABC.>",)
    assert ">" not in permissions(role, "UABC").publish


def test_the_dashboard_reaches_no_secret_and_writes_nothing():
    publish = permissions(Role.DASHBOARD, "U").publish
    assert not [s for s in publish if subjects.SECRETS_BUCKET in s]
    assert not [s for s in publish if s.startswith(("$KV.", "$O.", "fluxbus.events."))]


@pytest.mark.parametrize(
    ("role", "kind"),
    [
        pytest.param(Role.SOURCE, "gitrepository", id="source"),
        pytest.param(Role.KUSTOMIZE, "kustomization", id="kustomize"),
        pytest.param(Role.NOTIFIER, "provider", id="notifier"),
        pytest.param(Role.HELM, "helmrelease", id="helm"),
    ],
)
def test_a_service_writes_the_status_of_its_own_kinds_only(role: Role, kind: str):
    writes = [s for s in permissions(role, "U").publish if s.startswith("$KV.fluxbus-status.")]
    assert f"$KV.fluxbus-status.{kind}.>" in writes
    assert "$KV.fluxbus-status.>" not in writes


def test_only_services_hold_leases_and_only_their_own():
    for role, access in ACCESS.items():
        leases = [s for s in permissions(role, "U").publish if s.startswith("$KV.fluxbus-leases.")]
        if access.everything:
            continue
        expected = [f"$KV.fluxbus-leases.{role}.>", f"$KV.fluxbus-leases.members.{role}.>"]
        assert leases == (expected if access.service else [])


def test_nats_server_accepts_the_generated_configuration(tmp_path: Path):
    ca = TestCA.create(tmp_path / "pki")
    files = write_config(
        tmp_path / "auth",
        store_dir=str(tmp_path / "js"),
        tls=ServerTLS(
            str(ca.path("server.crt")), str(ca.path("server.key")), str(ca.path("ca.crt")), True
        ),
        key_env="NATS_JETSTREAM_KEY",
    )
    text = files.config.read_text()
    assert "key: $NATS_JETSTREAM_KEY" in text
    assert not [r for r, p in files.creds.items() if p.read_text().strip() in text]  # no seed
    checked = subprocess.run(
        [nats_server_binary(), "-c", str(files.config), "-t"],
        env={"NATS_JETSTREAM_KEY": "k"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
    assert {p.stat().st_mode & 0o777 for p in files.creds.values()} == {0o600}


def test_generating_again_keeps_the_users_and_the_key(tmp_path: Path):
    first = write_config(tmp_path, store_dir="/data")
    seeds = {r: p.read_text() for r, p in first.creds.items()}
    second = write_config(tmp_path, store_dir="/data")
    assert {r: p.read_text() for r, p in second.creds.items()} == seeds
    assert first.config.read_text() == second.config.read_text()


@pytest.mark.parametrize(
    ("content", "option"),
    [
        pytest.param("-----BEGIN NATS USER JWT-----\neyJ\n", "user_credentials", id="creds"),
        pytest.param("fluxbus:s3cr3t\n", "password", id="user-password"),
    ],
)
def test_a_credentials_file_is_recognized_by_its_content(tmp_path: Path, content: str, option: str):
    path = tmp_path / "creds"
    path.write_text(content)
    opts, _ = auth_options(str(path))
    assert option in opts


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("SUnot-a-real-seed-s3cr3t", id="broken-seed"),
        pytest.param("just s3cr3t words\nover lines", id="unknown"),
    ],
)
def test_a_bad_credentials_file_is_named_but_never_quoted(tmp_path: Path, content: str):
    path = tmp_path / "creds"
    path.write_text(content)
    with pytest.raises(BusError) as err:
        auth_options(str(path))
    assert str(path) in str(err.value)
    assert "s3cr3t" not in str(err.value)


async def test_a_user_password_file_logs_in(tmp_path: Path):
    server = NatsServer(tmp_path / "nats", extra_args=["--user", "fluxbus", "--pass", "pa55"])
    server.start()
    try:
        creds = tmp_path / "creds"
        creds.write_text("fluxbus:pa55\n")
        settings = BusSettings(url=server.url, credentials=str(creds))
        bus = await Bus.connect(settings, "test", create=True)
        assert await bus.list_objects() == []
        await bus.close()
    finally:
        server.stop()
