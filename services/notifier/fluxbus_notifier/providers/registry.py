"""The one table of Provider types fluxbus delivers to: type → sender.

Adapter (the senders do HTTP). A type missing here is refused by `send` as
unsupported, not retryable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType

from fluxbus_common.events import Event
from fluxbus_notifier.providers.alertmanager import send_alertmanager
from fluxbus_notifier.providers.discord import send_discord
from fluxbus_notifier.providers.generic import send_generic, send_generic_hmac
from fluxbus_notifier.providers.github import send_github
from fluxbus_notifier.providers.gitlab import send_gitlab
from fluxbus_notifier.providers.googlechat import send_googlechat
from fluxbus_notifier.providers.msteams import send_msteams
from fluxbus_notifier.providers.slack import send_slack
from fluxbus_notifier.providers.transport import ProviderHTTP

Sender = Callable[[ProviderHTTP, Event], Awaitable[None]]

SENDERS: Mapping[str, Sender] = MappingProxyType(
    {
        "generic": send_generic,
        "generic-hmac": send_generic_hmac,
        "slack": send_slack,
        "discord": send_discord,
        "msteams": send_msteams,
        "googlechat": send_googlechat,
        "github": send_github,
        "gitlab": send_gitlab,
        "alertmanager": send_alertmanager,
    }
)
