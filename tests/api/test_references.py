"""Fetching an image_url: the server connects to exactly the address it checked."""

import asyncio
import socket

import pytest

from moviola.api import references
from moviola.errors import InvalidRequestError


def resolver(*answers):
    """A name server that answers each lookup with the next address (DNS rebinding)."""
    calls = []

    def getaddrinfo(host, port, *args, **kwargs):
        calls.append(host)
        address = answers[min(len(calls), len(answers)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0))]

    return getaddrinfo, calls


def test_the_checked_address_is_the_one_connected_to(monkeypatch):
    getaddrinfo, calls = resolver("93.184.216.34", "127.0.0.1")
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    target, headers, extensions = asyncio.run(
        references.pinned("https://images.example.com:8443/a.png?x=1")
    )
    assert target == "https://93.184.216.34:8443/a.png?x=1"
    assert headers == {"Host": "images.example.com:8443"}
    assert extensions == {"sni_hostname": "images.example.com"}  # TLS checks the real name
    assert calls == ["images.example.com"]  # resolved once: no second answer to rebind with


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1"])
def test_a_name_that_resolves_inward_is_refused(monkeypatch, address):
    getaddrinfo, _ = resolver(address)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(InvalidRequestError) as caught:
        asyncio.run(references.pinned("http://inward.example.com/a.png"))
    assert caught.value.param == "input_reference.image_url"
    assert "private address" in caught.value.message
