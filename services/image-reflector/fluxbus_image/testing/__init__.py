"""A real container registry for tests: `docker-registry` (Docker Distribution 2.8) in a child process.

Test support, not production code. Modules: `registry_server` (the process,
its configuration and pushing images), `token_server` (a Docker token-auth
server the registry trusts), `front` (a counting, paginating reverse proxy),
and `fixtures`, the pytest plugin `tests/conftest.py` registers:

    registry            anonymous
    registry_basic      htpasswd Basic auth: .username / .password, .docker_config()
    registry_token      Bearer tokens from .token_server (counters .requests / .tokens)
    registry_tls        https with `test_ca` (.tls.ca_pem); registry_mtls also needs
                        .tls.client_cert_pem / .tls.client_key_pem
    registry_factory(auth=..., tls=..., require_client_cert=..., token_expires_in=...)

Each has `.host`, `.image(repo)`, `push_tag(repo, tag) -> digest`,
`push_tags(repo, tags) -> digest`, and (without TLS) request counters
`.requests` / `.counts` / `.reset_counters()` and pagination knobs
`.front.max_page_size` / `.front.ignore_n`. Without the binary the fixtures
skip with a message naming the Debian package.
"""

from fluxbus_image.testing.front import RegistryFront
from fluxbus_image.testing.registry_server import RegistryServer, registry_binary
from fluxbus_image.testing.token_server import TokenServer, libtrust_key_id

__all__ = ["RegistryFront", "RegistryServer", "TokenServer", "libtrust_key_id", "registry_binary"]
