"""Credentials come from Flux's secret keys and never show up in text."""

import base64

import pytest

from fluxbus_git.errors import GitCredentialsError
from fluxbus_git.logic.auth import GitAuth


def test_flux_secret_keys_map_to_credentials() -> None:
    auth = GitAuth.from_secret(
        {
            "username": "bot",
            "password": "pa55word",
            "bearerToken": "tok3n",
            "ca.crt": b"CA",
            "tls.crt": b"CRT",
            "tls.key": b"KEY",
            "identity": b"KEY-PEM",
            "known_hosts": b"host ssh-ed25519 AAAA",
        },
        name="creds",
    )
    assert (auth.username, auth.password, auth.bearer_token) == ("bot", "pa55word", "tok3n")
    assert (auth.ca_cert, auth.tls_cert, auth.tls_key) == (b"CA", b"CRT", b"KEY")
    assert auth.passphrase == "pa55word"  # with an identity, `password` is the key's passphrase
    assert auth.secret_label == "secret 'creds'"


def test_ca_crt_wins_over_ca_file() -> None:
    assert GitAuth.from_secret({"caFile": b"old", "ca.crt": b"new"}).ca_cert == b"new"
    assert GitAuth.from_secret({"caFile": b"old"}).ca_cert == b"old"


def test_base64_data_is_decoded_and_bad_base64_is_reported() -> None:
    enc = {
        "username": base64.b64encode(b"bot").decode(),
        "password": base64.b64encode(b"pw\n").decode(),
    }
    auth = GitAuth.from_secret(enc, encoded=True)
    assert (auth.username, auth.password) == ("bot", "pw")
    with pytest.raises(GitCredentialsError, match="'password' is not valid base64"):
        GitAuth.from_secret({"password": "%%%"}, name="s", encoded=True)


def test_half_a_client_certificate_is_an_error() -> None:
    with pytest.raises(
        GitCredentialsError, match=r"'tls\.crt' and 'tls\.key' must be set together"
    ):
        GitAuth.from_secret({"tls.crt": b"CRT"}, name="mtls")


def test_repr_names_the_keys_but_never_a_value() -> None:
    auth = GitAuth(
        username="bot", password="hunter2", bearer_token="t0k", identity=b"PRIVATE", secret_name="s"
    )
    text = repr(auth) + str(auth)
    assert "hunter2" not in text and "t0k" not in text and "PRIVATE" not in text
    assert "password" in text and "identity" in text


def test_redaction_replaces_every_secret_string_in_a_message() -> None:
    auth = GitAuth(username="bot", password="pa55word", bearer_token="tok3n")
    text = "server said: bad password pa55word for bot (token tok3n)"
    assert auth.redact(text) == "server said: bad password *** for bot (token ***)"
