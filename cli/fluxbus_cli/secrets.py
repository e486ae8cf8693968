"""Building Secrets the way `flux create secret` and `kubectl create secret` do,
with Flux's keys: `username`, `password`, `bearerToken`, `identity`,
`known_hosts`, `ca.crt`, `tls.crt`, `tls.key` and `.dockerconfigjson`.

Values arrive as bytes (files are read by the caller). Error messages name
flags and keys, never a value.

Pure: no I/O.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from fluxbus_cli.errors import CliError

DOCKER_CONFIG_JSON = ".dockerconfigjson"
DOCKER_CONFIG_JSON_TYPE = "kubernetes.io/dockerconfigjson"


def secret_document(
    name: str, namespace: str, data: Mapping[str, bytes], type_: str = "Opaque"
) -> dict[str, Any]:
    """Return a v1 Secret manifest with base64 `data`, keys sorted."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": type_,
        "data": {k: base64.b64encode(data[k]).decode() for k in sorted(data)},
    }


def split_literal(item: str) -> tuple[str, bytes]:
    """Split a `--from-literal KEY=VALUE` into (key, value)."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise CliError("--from-literal must be KEY=VALUE (the key must not be empty)")
    return key, value.encode()


def split_file_spec(item: str) -> tuple[str | None, str]:
    """Split a `--from-file [KEY=]PATH` into (key or None, path)."""
    key, sep, path = item.partition("=")
    if sep and key and path:
        return key, path
    return None, item


def generic_data(
    literals: list[tuple[str, bytes]], files: list[tuple[str, bytes]]
) -> dict[str, bytes]:
    """Merge literal and file entries; a key given twice is an error."""
    data: dict[str, bytes] = {}
    for key, value in [*literals, *files]:
        _check_key(key)
        if key in data:
            raise CliError(f'key "{key}" is given more than once')
        data[key] = value
    return data


def _check_key(key: str) -> None:
    allowed = all(ch.isalnum() or ch in "-._" for ch in key)
    if not key or not allowed:
        raise CliError(f'invalid secret key "{key}": use letters, digits, "-", "_" and "."')


def git_data(
    url: str,
    *,
    username: str | None = None,
    password: str | None = None,
    bearer_token: str | None = None,
    private_key: bytes | None = None,
    known_hosts: bytes | None = None,
    ca: bytes | None = None,
    cert: bytes | None = None,
    key: bytes | None = None,
) -> dict[str, bytes]:
    """Return the data of a Git credentials Secret for `url` (Flux's GitRepository keys).

    HTTP(S): basic auth (`username` + `password`) or `bearerToken`, optional
    `ca.crt` and client `tls.crt`/`tls.key`. SSH: `identity` and `known_hosts`
    (and `password` as the key's passphrase). Raises CliError on a wrong combination.
    """
    scheme = urlsplit(url).scheme.lower()
    data: dict[str, bytes] = {}
    if scheme in ("http", "https"):
        if private_key is not None or known_hosts is not None:
            raise CliError("--private-key-file and --known-hosts-file are for ssh:// URLs")
        if bearer_token and (username or password):
            raise CliError("use either --username/--password or --bearer-token, not both")
        if bool(username) != bool(password) and not bearer_token:
            raise CliError("--username and --password go together")
        if username and password:
            data["username"] = username.encode()
            data["password"] = password.encode()
        if bearer_token:
            data["bearerToken"] = bearer_token.encode()
        if (cert is None) != (key is None):
            raise CliError("--cert-file and --key-file go together")
        if ca is not None:
            data["ca.crt"] = ca
        if cert is not None and key is not None:
            data["tls.crt"] = cert
            data["tls.key"] = key
        if not data:
            raise CliError(
                "give --username/--password, --bearer-token, --ca-file or --cert-file/--key-file"
            )
    elif scheme == "ssh":
        if private_key is None or known_hosts is None:
            raise CliError("ssh:// URLs need --private-key-file and --known-hosts-file")
        if bearer_token or username:
            raise CliError("--username and --bearer-token are for http(s):// URLs")
        data["identity"] = private_key
        data["known_hosts"] = known_hosts
        if password:
            data["password"] = password.encode()  # the private key's passphrase
    else:
        raise CliError(f'--url must be http://, https:// or ssh://, got scheme "{scheme}"')
    return data


def docker_config_data(server: str, username: str, password: str) -> dict[str, bytes]:
    """Return the `.dockerconfigjson` data of an image pull Secret (kubectl's format)."""
    if not (server and username and password):
        raise CliError("--docker-server, --docker-username and --docker-password are required")
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    config = {"auths": {server: {"username": username, "password": password, "auth": auth}}}
    return {DOCKER_CONFIG_JSON: json.dumps(config, separators=(",", ":")).encode()}
