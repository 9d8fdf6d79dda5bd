"""Is a request from this machine? The one answer the API's keyless access and the Studio's
keyless sign-in both rely on.

Plain functions over host names and headers, so every layer that meets HTTP can use them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

# A request carrying any of these came through a proxy: it never counts as local, so a
# reverse proxy on the same machine cannot open a keyless server to the world.
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def is_loopback(host: str | None) -> bool:
    """An address (or `localhost`) of this machine."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def is_local_name(host: str) -> bool:
    """A name a browser resolves to this machine: loopback, or any `*.localhost`."""
    return is_loopback(host) or host.lower().endswith(".localhost")


def hostname(netloc: str) -> str:
    """The host part of a `Host` header or a URL's netloc: `[::1]:8000` → `::1`."""
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")]
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


def through_proxy(headers: Mapping[str, str]) -> bool:
    return any(name in headers for name in PROXY_HEADERS)
