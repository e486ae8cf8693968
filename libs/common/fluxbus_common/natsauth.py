"""Who may do what on the bus: one NATS user per service (and for the CLI, a
read-only dashboard and the admin that creates the buckets), each allowed to
publish and subscribe on exactly the subjects of the KV buckets, object store,
streams and JetStream API calls it uses.

`ACCESS` is the one description of those rights; `permissions()` turns a
role's into NATS subjects, `server_config()` renders a nats-server
configuration from them, and `access_table()` the table of docs/security.md
(a test keeps the two equal).

Every user gets its own reply-inbox prefix (`inbox_prefix()`): with the usual
shared `_INBOX.>`, any client could subscribe to every other client's replies,
secrets included.

Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from fluxbus_common import subjects

__all__ = [
    "ACCESS",
    "Access",
    "JetStreamEncryption",
    "Permissions",
    "Role",
    "ServerTLS",
    "access_table",
    "inbox_prefix",
    "permissions",
    "server_config",
]

JS_API = "$JS.API"


class Role(StrEnum):
    """A NATS user of fluxbus; the five services are named as their `SERVICE`."""

    SOURCE = "source"
    KUSTOMIZE = "kustomize"
    IMAGE_REFLECTOR = "image-reflector"
    NOTIFIER = "notifier"
    HELM = "helm"
    CLI = "cli"
    DASHBOARD = "dashboard"
    """Read-only: objects, status, events, heartbeats and logs; never Secrets."""
    ADMIN = "admin"
    """Creates the buckets, object store and streams (`fluxbus nats init`); everything."""


SERVICES: tuple[Role, ...] = (
    Role.SOURCE,
    Role.KUSTOMIZE,
    Role.IMAGE_REFLECTOR,
    Role.NOTIFIER,
    Role.HELM,
)

ALL = ">"
"""Every key (or kind) of a bucket."""


@dataclass(frozen=True)
class Access:
    """What one role does on the bus, in fluxbus's terms.

    Key patterns are NATS subject patterns over the bucket's keys
    (`gitrepository.>`: every GitRepository). Every role may read the objects
    and status buckets; nothing else is implied.
    """

    summary: str
    write_objects: tuple[str, ...] = ()
    """Object keys the role writes (finalizers, annotations, deletion, bootstrap)."""
    write_status: tuple[str, ...] = ()
    """Status keys the role writes: only the kinds it owns."""
    read_secrets: bool = False
    write_secrets: bool = False
    read_artifacts: bool = False
    write_artifacts: bool = False
    publish_events: tuple[str, ...] = ()
    """Kinds (lower-case) the role emits events about."""
    read_events: bool = False
    consume_events: bool = False
    """Owns a durable consumer of the events stream (the notifier's dispatch)."""
    own_buckets: tuple[str, ...] = ()
    """KV buckets the role creates, resizes and uses alone."""
    service: bool = False
    """Holds leases, publishes heartbeats and logs under its own name."""
    read_liveness: bool = False
    """Reads every service's heartbeats and logs (`fluxbus check`, `fluxbus logs`)."""
    everything: bool = False


def _kinds(*kinds: str) -> tuple[str, ...]:
    return tuple(subjects.kind_filter(k) for k in kinds)


ACCESS: Mapping[Role, Access] = {
    Role.SOURCE: Access(
        "fetches Git and Helm repositories, stores artifacts, owns GitRepository, HelmRepository, HelmChart",
        write_objects=_kinds("GitRepository", "HelmRepository", "HelmChart"),
        write_status=_kinds("GitRepository", "HelmRepository", "HelmChart"),
        read_secrets=True,
        read_artifacts=True,
        write_artifacts=True,
        publish_events=("gitrepository", "helmrepository", "helmchart"),
        service=True,
    ),
    Role.KUSTOMIZE: Access(
        "applies artifacts to the cluster, owns Kustomization; writes toolkit objects "
        "found in rendered output into the store (bootstrap); keeps each history entry's "
        "rendered output in the object store (rollback)",
        write_objects=(ALL,),
        write_status=_kinds("Kustomization"),
        read_secrets=True,
        read_artifacts=True,
        write_artifacts=True,
        publish_events=("kustomization",),
        service=True,
    ),
    Role.IMAGE_REFLECTOR: Access(
        "scans registries (tag lists in the object store), pushes image updates to Git",
        write_objects=_kinds("ImageRepository", "ImagePolicy", "ImageUpdateAutomation"),
        write_status=_kinds("ImageRepository", "ImagePolicy", "ImageUpdateAutomation"),
        read_secrets=True,
        read_artifacts=True,
        write_artifacts=True,
        publish_events=("imagerepository", "imagepolicy", "imageupdateautomation"),
        service=True,
    ),
    Role.NOTIFIER: Access(
        "delivers events, owns Provider/Alert/Receiver; Receivers annotate the objects "
        "they name (any kind, as in Flux)",
        write_objects=(ALL,),
        write_status=_kinds("Provider", "Alert", "Receiver"),
        read_secrets=True,
        publish_events=("provider", "alert", "receiver"),
        read_events=True,
        consume_events=True,
        own_buckets=(subjects.NOTIFIER_BUCKET, subjects.NOTIFIER_DEDUP_BUCKET),
        service=True,
    ),
    Role.HELM: Access(
        "installs and upgrades Helm releases in the cluster, owns HelmRelease; writes the "
        "HelmChart it generates for `spec.chart` (and deletes it with its HelmRelease); "
        "reads chart artifacts and values from Secrets and ConfigMaps",
        write_objects=_kinds("HelmRelease", "HelmChart"),
        write_status=_kinds("HelmRelease"),
        read_secrets=True,
        read_artifacts=True,
        publish_events=("helmrelease",),
        service=True,
    ),
    Role.CLI: Access(
        "`fluxbus apply/delete/reconcile/create secret/get/events/check/logs`",
        write_objects=(ALL,),
        read_secrets=True,
        write_secrets=True,
        read_artifacts=True,
        read_events=True,
        read_liveness=True,
    ),
    Role.DASHBOARD: Access(
        "read-only view: objects, status, events, heartbeats, logs; no Secrets",
        read_events=True,
        read_liveness=True,
    ),
    Role.ADMIN: Access(
        "bootstrap (`fluxbus nats init`): creates buckets, store and streams",
        everything=True,
    ),
}


def inbox_prefix(identity: str) -> str:
    """Return the reply-inbox prefix of a user (its nkey or user name): the only
    inbox it may subscribe to."""
    return f"_INBOX_{identity}"


@dataclass(frozen=True)
class Permissions:
    """NATS publish/subscribe allow lists of one user."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]

    def as_config(self) -> dict[str, dict[str, list[str]]]:
        """The `permissions` block of a nats-server user."""
        return {
            "publish": {"allow": list(self.publish)},
            "subscribe": {"allow": list(self.subscribe)},
        }


def _kv_read(bucket: str) -> list[str]:
    """Subjects to read a KV bucket: bind, get (from the stream leader), watch/list."""
    stream = f"KV_{bucket}"
    return _stream_read(stream)


def _stream_read(stream: str) -> list[str]:
    return [
        f"{JS_API}.STREAM.INFO.{stream}",
        f"{JS_API}.STREAM.MSG.GET.{stream}",
        f"{JS_API}.DIRECT.GET.{stream}",
        f"{JS_API}.DIRECT.GET.{stream}.>",
        f"{JS_API}.CONSUMER.CREATE.{stream}",
        f"{JS_API}.CONSUMER.CREATE.{stream}.>",
        f"{JS_API}.CONSUMER.INFO.{stream}.>",
        f"{JS_API}.CONSUMER.DELETE.{stream}.>",
        f"$JS.FC.{stream}.>",  # flow-control replies of ordered consumers
    ]


def _kv_write(bucket: str, keys: tuple[str, ...]) -> list[str]:
    return [f"$KV.{bucket}.{k}" for k in keys]


def _own_bucket(bucket: str) -> list[str]:
    stream = f"KV_{bucket}"
    return [
        *_kv_read(bucket),
        f"{JS_API}.STREAM.CREATE.{stream}",
        f"{JS_API}.STREAM.UPDATE.{stream}",
        f"$KV.{bucket}.>",
    ]


def permissions(role: Role, identity: str) -> Permissions:
    """Return the NATS permissions of `role` for the user `identity` (its nkey or
    name, which fixes its inbox prefix)."""
    access = ACCESS[role]
    inbox = f"{inbox_prefix(identity)}.>"
    if access.everything:
        return Permissions(publish=(ALL,), subscribe=(ALL,))
    pub: list[str] = [f"{JS_API}.INFO", f"{JS_API}.STREAM.NAMES"]
    pub += _kv_read(subjects.OBJECTS_BUCKET) + _kv_read(subjects.STATUS_BUCKET)
    pub += _kv_write(subjects.OBJECTS_BUCKET, access.write_objects)
    pub += _kv_write(subjects.STATUS_BUCKET, access.write_status)
    if access.read_secrets:
        pub += _kv_read(subjects.SECRETS_BUCKET)
    if access.write_secrets:
        pub += _kv_write(subjects.SECRETS_BUCKET, (ALL,))
    store = f"OBJ_{subjects.ARTIFACTS_STORE}"
    if access.read_artifacts or access.write_artifacts:
        pub += _stream_read(store)
    if access.write_artifacts:
        pub += [f"$O.{subjects.ARTIFACTS_STORE}.>", f"{JS_API}.STREAM.PURGE.{store}"]
    pub += [subjects.event_subject(kind, "*", "*") for kind in access.publish_events]
    events = subjects.EVENTS_STREAM
    if access.read_events:
        pub += _stream_read(events)
    if access.consume_events:
        pub += [
            f"{JS_API}.CONSUMER.DURABLE.CREATE.{events}.>",
            f"{JS_API}.CONSUMER.MSG.NEXT.{events}.>",
            f"$JS.ACK.{events}.>",
        ]
    for bucket in access.own_buckets:
        pub += _own_bucket(bucket)
    if access.service:
        name = role.value
        pub += _kv_read(subjects.LEASES_BUCKET)
        pub += _kv_write(
            subjects.LEASES_BUCKET, (f"{name}.>", f"{subjects.MEMBERS_PREFIX}.{name}.>")
        )
        pub += _kv_read(subjects.HEARTBEATS_BUCKET) + _kv_write(
            subjects.HEARTBEATS_BUCKET, (f"{name}.>",)
        )
        pub.append(f"{subjects.LOGS_PREFIX}.{name}.>")
    if access.read_liveness:
        pub += _kv_read(subjects.LEASES_BUCKET) + _kv_read(subjects.HEARTBEATS_BUCKET)
        pub += _stream_read(subjects.LOGS_STREAM)
    return Permissions(publish=tuple(dict.fromkeys(pub)), subscribe=(inbox,))


def _yes(flag: bool) -> str:
    return "yes" if flag else "—"


def _keys(patterns: tuple[str, ...]) -> str:
    if not patterns:
        return "—"
    if patterns == (ALL,):
        return "all"
    return ", ".join(p.removesuffix(".>") for p in patterns)


def access_table() -> str:
    """Return the Markdown table of every role's rights (docs/security.md)."""
    head = (
        "| role | objects: write | status: write | secrets | artifacts & tag lists "
        "| events | own buckets | leases, heartbeats, logs |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for role, a in ACCESS.items():
        if a.everything:
            rows.append(f"| `{role}` | all | all | read, write | read, write | all | all | all |")
            continue
        secrets = "read, write" if a.write_secrets else ("read" if a.read_secrets else "**none**")
        artifacts = "read, write" if a.write_artifacts else ("read" if a.read_artifacts else "none")
        events = ", ".join(
            x
            for x in (
                f"publish {_keys(tuple(a.publish_events))}" if a.publish_events else "",
                "read" if a.read_events and not a.consume_events else "",
                "durable consumer" if a.consume_events else "",
            )
            if x
        )
        liveness = "own (write)" if a.service else ("read all" if a.read_liveness else "—")
        rows.append(
            f"| `{role}` | {_keys(a.write_objects)} | {_keys(a.write_status)} | {secrets} "
            f"| {artifacts} | {events or '—'} | {', '.join(a.own_buckets) or '—'} | {liveness} |"
        )
    return head + "\n".join(rows) + "\n"


@dataclass(frozen=True)
class ServerTLS:
    """Certificate files of the NATS server; `verify` requires client certificates."""

    cert_file: str
    key_file: str
    ca_file: str | None = None
    verify: bool = False


@dataclass(frozen=True)
class JetStreamEncryption:
    """JetStream encryption at rest: every stream file is sealed with `key`, or
    with the value of the environment variable `key_env` of the server (a
    Kubernetes Secret), which keeps the key out of the configuration file."""

    key: str = ""
    key_env: str = ""
    cipher: str = "chachapoly"


@dataclass(frozen=True)
class ServerConfig:
    """What `server_config()` renders."""

    users: Mapping[Role, str]
    """Public nkey of each role's user."""
    store_dir: str
    host: str = "127.0.0.1"
    port: int = 4222
    tls: ServerTLS | None = None
    encryption: JetStreamEncryption | None = None
    extra: Mapping[str, object] = field(default_factory=dict)


def _value(v: object) -> str:
    """A nats-server configuration value: JSON is valid syntax for it."""
    return json.dumps(v)


def server_config(cfg: ServerConfig) -> str:
    """Return a nats-server configuration: JetStream (encrypted at rest when
    asked), TLS when given, and one nkey user per role with its permissions.

    The text holds public keys only; the encryption key is its one secret.
    """
    lines = [
        "# fluxbus NATS server: one nkey user per role (docs/security.md)",
        f"host: {_value(cfg.host)}",
        f"port: {cfg.port}",
        "jetstream {",
        f"  store_dir: {_value(cfg.store_dir)}",
    ]
    if cfg.encryption is not None:
        lines += [
            f"  cipher: {cfg.encryption.cipher}",
            f"  key: ${cfg.encryption.key_env}"
            if cfg.encryption.key_env
            else f"  key: {_value(cfg.encryption.key)}",
        ]
    lines.append("}")
    if cfg.tls is not None:
        lines += ["tls {", f"  cert_file: {_value(cfg.tls.cert_file)}"]
        lines.append(f"  key_file: {_value(cfg.tls.key_file)}")
        if cfg.tls.ca_file:
            lines.append(f"  ca_file: {_value(cfg.tls.ca_file)}")
        if cfg.tls.verify:
            lines.append("  verify: true")
        lines.append("}")
    for key, value in cfg.extra.items():
        lines.append(f"{key}: {_value(value)}")
    lines.append("authorization {")
    lines.append("  users: [")
    for role, nkey in cfg.users.items():
        user = {"nkey": nkey, "permissions": permissions(role, nkey).as_config()}
        lines.append(f"    {_value(user)}  # {role}")
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"
