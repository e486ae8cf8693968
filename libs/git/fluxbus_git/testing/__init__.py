"""Real Git servers and repositories for tests (smart HTTP, HTTPS, mTLS, SSH, a proxy).

Test support, not production code: it may import dulwich and start
processes. Modules: `repos` (bare repositories built with dulwich), `tls`
(a test CA), `http_server`, `ssh_server`, `proxy`, `network` (ports), and
`fixtures`, the pytest plugin `tests/conftest.py` registers, so every
package's tests (source, kustomize, image automation) can use them. The
classes are importable from here without pytest (`make demo` serves its
repository with `GitHTTPServer`).

Building repositories (bare, in `tmp_path`, with dulwich; no working tree):

    def test_x(git_repo):                       # an empty bare repo named "repo"
        sha = git_repo.commit({"app/deploy.yaml": "kind: Deployment\\n"})
        git_repo.commit({"README.md": None}, branch="main")      # None deletes; a new branch
                                                                  # starts from master's tip
        git_repo.commit({"run.sh": File("#!/bin/sh\\n", executable=True), "l": Symlink("run.sh")})
        git_repo.commit_directory(Path("examples"), branch="main")   # a whole folder, as is
        git_repo.tag("v1.0.0", annotated=True)
        git_repo.head("master"), git_repo.refs()

    other = git_repo_factory("other")           # more repositories in the same root

Serving them (all on 127.0.0.1, free ports, real sockets):

    git_http_server                  smart HTTP, anonymous (`git http-backend`)
    git_http_basic_server            basic auth: .username / .password
    git_http_bearer_server           bearer token: .token
    git_https_server                 HTTPS with a test CA: .ca.ca_pem
    git_https_mtls_server            HTTPS requiring a client cert: .ca.client_cert_pem/.client_key_pem
    git_ssh_server                   real sshd: .identity, .identity_encrypted (+ .passphrase),
                                     .known_hosts, .username (keys made once per session:
                                     `git_ssh_keys`; `GitSSHServer(root, dir, keys=...)`)
    http_proxy                       forward proxy (CONNECT too) with basic auth: .address,
                                     .auth, counters .requests/.tunnels
    gpg_keys                         OpenPGP keys made by gpg (session): .plain, .protected
                                     (.passphrase), .verify_home for `git verify-commit`
    git_http_server_factory(...)     any combination (auth=, tls=, require_client_cert=,
                                     backend="git" | "dulwich" (in-process, protocol v0 only),
                                     receive_pack=, push_options=)

Pushes: the authenticated servers (and SSH) accept them; read them back with
the real git: `repo.log("main")`, `repo.show(path, ref)`, `repo.fsck()`,
`repo.verify_commit(sha, gpg_keys.verify_home)`.

Each server has `url(repo)` (repo: a `GitRepo` or a name), `stop()`,
`start()` (same port again: for "the server comes back" tests), and
counters `ref_listings` (ref advertisements/ls-refs served), `fetches`
(upload-pack requests that sent objects or negotiated them) and
`requests`; SSH counts `sessions` and `fetches` (upload-pack runs).
`reset_counters()` zeroes them; `counters.busy_seconds` is the HTTP
server's own handler time (for benchmarks). `test_ca` (a `TestCA`) holds
PEM bytes for a CA, a 127.0.0.1 server certificate, a client certificate
and an unrelated CA (`other_ca_pem`) for negative tests.

For a GitRepository secret: basic `{"username": s.username, "password":
s.password}`, bearer `{"bearerToken": s.token}`, HTTPS `{"ca.crt":
s.ca.ca_pem}`, mTLS adds `tls.crt`/`tls.key` from `s.ca.client_cert_pem` /
`client_key_pem`, SSH `{"identity": s.identity, "known_hosts": s.known_hosts}`.
"""

from fluxbus_git.testing.gpg import GPG_TEST_PASSPHRASE, GPGKeys, TestKey
from fluxbus_git.testing.http_server import BasicAuth, BearerAuth, GitHTTPServer
from fluxbus_git.testing.network import free_port, wait_for_port
from fluxbus_git.testing.proxy import HTTPProxy
from fluxbus_git.testing.repos import (
    CommitInfo,
    File,
    FileValue,
    GitRepo,
    Symlink,
    make_repo,
    remove_tree,
)
from fluxbus_git.testing.ssh_server import SSH_TEST_PASSPHRASE, GitSSHServer, make_ssh_keys
from fluxbus_git.testing.tls import TestCA

__all__ = [
    "GPG_TEST_PASSPHRASE",
    "SSH_TEST_PASSPHRASE",
    "BasicAuth",
    "BearerAuth",
    "CommitInfo",
    "File",
    "FileValue",
    "GPGKeys",
    "GitHTTPServer",
    "GitRepo",
    "GitSSHServer",
    "HTTPProxy",
    "Symlink",
    "TestCA",
    "TestKey",
    "free_port",
    "make_repo",
    "make_ssh_keys",
    "remove_tree",
    "wait_for_port",
]
