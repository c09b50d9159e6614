"""Outbound HTTP for URL imports, safe against SSRF (DESIGN.md §7): only http(s), every address checked
(literal or from DNS, IPv4-mapped IPv6 unwrapped) and then pinned for the connection, every redirect
re-checked, sizes and times capped. An operator allowlist (IMPORT_ALLOW) opens chosen hosts and networks."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import certifi
import httpx

MAX_REDIRECTS = 5
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


class Refused(Exception):
    """The URL may not be fetched: a permanent refusal, never retried."""


class Unreachable(Exception):
    """The source could not be reached or spoke broken HTTP: worth retrying later."""


@dataclass(frozen=True)
class Allowlist:
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> Allowlist:
        """`IMPORT_ALLOW`: comma-separated host names, addresses and CIDR networks."""
        networks, hosts = [], set()
        for item in filter(None, (part.strip() for part in text.split(","))):
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def allows(self, host: str, address: IPAddress) -> bool:
        return host.lower().rstrip(".") in self.hosts or any(address in network for network in self.networks)


def unwrap(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:127.0.0.1 reaches 127.0.0.1
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def check_address(host: str, address: str, allow: Allowlist) -> IPAddress:
    ip = unwrap(ipaddress.ip_address(address.split("%")[0]))
    if allow.allows(host, ip):
        return ip
    # is_global is False for loopback, private, link-local, shared, reserved and unspecified ranges.
    if not ip.is_global or ip.is_multicast or ip.is_reserved:
        raise Refused(f"refusing to fetch from {host} ({ip}): not a public address")
    return ip


@functools.cache
def tls_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~20 ms: once per process, not once per import.
    return ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or certifi.where())


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


@dataclass
class Guard:
    allow: Allowlist
    resolver: Resolver = system_resolver
    timeout: float = 30.0  # per connect and per read; the whole import has its own cap

    async def pin(self, url: str) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
        """The URL with its host replaced by a checked address, plus the Host header and TLS name to keep."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise Refused(f"refusing {parts.scheme or 'a schemeless'} URL: only http and https are fetched")
        host = parts.hostname
        if not host:
            raise Refused("the URL has no host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as error:
            raise Refused(f"malformed URL: {error}") from error
        try:
            literal = ipaddress.ip_address(host)
            addresses = [str(literal)]
        except ValueError:
            try:
                addresses = await self.resolver(host, port)
            except OSError as error:
                raise Refused(f"cannot resolve {host}: {error}") from error
        if not addresses:
            raise Refused(f"{host} has no address")
        # Every answer must pass: a name with one public and one private address is refused.
        checked = [check_address(host, address, self.allow) for address in addresses]
        target = httpx.URL(url).copy_with(host=str(checked[0]))
        headers = {"Host": parts.netloc.rsplit("@", 1)[-1]}
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        return target, headers, extensions

    @asynccontextmanager
    async def get(self, url: str, headers: dict[str, str] | None = None) -> AsyncIterator[httpx.Response]:
        """GET with redirects followed by hand, each hop checked and pinned; yields the final response."""
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False, verify=tls_context()) as client:
            for _ in range(MAX_REDIRECTS + 1):
                target, pinned, extensions = await self.pin(url)
                request = client.build_request(
                    "GET",
                    target,
                    headers={**(headers or {}), **pinned, "Accept-Encoding": "identity"},
                    extensions=extensions,
                )
                try:
                    response = await client.send(request, stream=True)
                except httpx.HTTPError as error:
                    raise Unreachable(f"{url}: {error}") from error
                try:
                    if response.is_redirect and "location" in response.headers:
                        following = urljoin(url, response.headers["location"])
                        if urlsplit(following).netloc != urlsplit(url).netloc:
                            headers = None  # credentials meant for one host never follow a redirect to another
                        url = following
                        continue
                    yield response
                    return
                finally:
                    await response.aclose()
            raise Refused(f"more than {MAX_REDIRECTS} redirects")
