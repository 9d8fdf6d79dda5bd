"""Fetching an image_url: the server connects to exactly the address it checked, gives up at
one deadline for the whole fetch, and refuses a URL it cannot parse as the client's mistake."""

import asyncio
import socket
import socketserver
import threading
import time

import pytest
from openai import BadRequestError

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


@pytest.fixture
def slow_drip():
    """An image server on loopback that sends its answer one byte per second."""

    class Drip(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.recv(65536)
            self.request.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 600\r\n\r\n"
            )
            for _ in range(600):
                time.sleep(1)
                try:
                    self.request.sendall(b"\0")
                except OSError:  # the fetcher gave up
                    return

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Drip)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/slow.png"
    server.shutdown()
    server.server_close()


def test_an_image_url_that_drips_is_cut_off_at_the_deadline(make_server, slow_drip):
    server = make_server(
        env={
            "MOVIOLA_WORKERS": "0",
            "MOVIOLA_FETCH_PRIVATE_URLS": "true",
            "MOVIOLA_IMAGE_URL_TIMEOUT_S": "2",
        }
    ).start()
    started = time.monotonic()
    with pytest.raises(BadRequestError) as caught:
        server.client(timeout=30).videos.create(
            prompt="a", extra_body={"input_reference": {"image_url": slow_drip}}
        )
    assert time.monotonic() - started < 10
    assert caught.value.body["param"] == "input_reference.image_url"
    assert "took longer than 2 s" in caught.value.body["message"]


@pytest.mark.parametrize("url", ["http://[::1", "http://[::1]x/a.png", "http://a..b/a.png"])
def test_a_malformed_image_url_is_400(client, strict, url):
    # One server fetches private URLs as given, the other checks the address first.
    for api in (client, strict.client(strict.create_key())):
        with pytest.raises(BadRequestError) as caught:
            api.videos.create(prompt="a", extra_body={"input_reference": {"image_url": url}})
        assert caught.value.body["param"] == "input_reference.image_url"
