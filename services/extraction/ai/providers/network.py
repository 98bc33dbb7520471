"""Where the AI worker may connect: the settings' base URL must not turn it into a probe of the network.

Every address a host resolves to is checked, IPv4 and IPv6, and one bad address refuses the host:
- never: link-local (169.254.0.0/16 with the cloud metadata service, fe80::/10), other metadata
  addresses (fd00:ec2::254, 100.100.100.200), unspecified (0.0.0.0, ::), multicast, broadcast, reserved,
  and IPv6 forms that embed such an IPv4 address (mapped, NAT64, 6to4);
- loopback, private and shared (CGNAT) ranges only when an administrator allows local model servers
  (Ollama, LM Studio): `ATRIUM_AI_ALLOW_LOCAL_SERVERS=1`.
The check runs when a base URL is saved or tested, and again on every connection the provider clients
make (`guarded_transport`: the connection goes to the very address that was checked), so neither a DNS
answer that changes afterwards nor a redirect reaches a refused address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Iterable
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = (
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS over IPv6
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud
)
SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: not public, not RFC 1918
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def allow_local_servers_from_env() -> bool:
    """`ATRIUM_AI_ALLOW_LOCAL_SERVERS`: whether model servers on this machine or the local network may be used."""
    return os.environ.get("ATRIUM_AI_ALLOW_LOCAL_SERVERS", "") in ("1", "true", "yes")


class BlockedAddress(Exception):
    """The host resolves to an address the AI worker may not connect to (message in plain words)."""


class BadUrl(BlockedAddress):
    """Not an http(s) URL with a host and port (the message repeats the URL: mask it)."""


class Unresolvable(BlockedAddress):
    """The host has no address now: nothing to connect to (the guard checks again when it resolves)."""


REFUSED = "Refused by the AI network policy: "  # how a connection the guard refused is told apart


def policy_refusal(err: BaseException) -> str | None:
    """The guard's reason if `err` (an SDK's connection error) comes from a refused connection."""
    seen: BaseException | None = err
    for _ in range(8):  # the SDK's error ← httpx's ← httpcore's
        if seen is None:
            return None
        if str(seen).startswith(REFUSED):
            return str(seen)[len(REFUSED) :]  # names and addresses only
        seen = seen.__cause__ or seen.__context__
    return None


def _embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def refusal(ip: IPAddress, allow_local: bool) -> str | None:
    """Why `ip` is refused, or None when the worker may connect to it."""
    inner = _embedded_v4(ip)
    if inner is not None:
        why = refusal(inner, allow_local)
        return f"{why} (inside {ip})" if why else None
    if ip.is_link_local or any(ip in net for net in METADATA):
        return f"{ip} is a link-local or cloud metadata address"
    if ip.is_unspecified or ip.is_multicast or str(ip) == "255.255.255.255":
        return f"{ip} is not an address a model server can have"
    if ip.is_loopback or ip.is_private or ip in SHARED:
        if allow_local:
            return None
        return (
            f"{ip} is on this machine or the local network; an administrator allows local model servers "
            "with ATRIUM_AI_ALLOW_LOCAL_SERVERS=1"
        )
    if ip.is_reserved or not ip.is_global:
        return f"{ip} is not an address a model server can have"
    return None


def check_addresses(host: str, addresses: Iterable[str], allow_local: bool) -> list[str]:
    found = list(dict.fromkeys(addresses))
    if not found:
        raise Unresolvable(f"{host} does not resolve to any address.")
    for a in found:
        why = refusal(ipaddress.ip_address(a.split("%", 1)[0]), allow_local)
        if why:
            raise BlockedAddress(f"Connections to {host} are refused: {why}.")
    return found


async def resolve_checked(host: str, port: int, allow_local: bool) -> list[str]:
    """Every address of `host` (checked); raises `BlockedAddress` if any one is refused."""
    try:
        return check_addresses(host, [str(ipaddress.ip_address(host.strip("[]")))], allow_local)
    except ValueError:
        pass  # a name, not an address
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Unresolvable(f"{host} cannot be resolved ({exc.strerror}).") from None
    return check_addresses(host, [str(info[4][0]) for info in infos], allow_local)


async def check_base_url(url: str, default: str, allow_local: bool) -> None:
    """Refuse a base URL (or the provider's default when empty) that is not http(s) or whose host resolves to
    a refused address. A host that does not resolve now passes: there is nothing to reach, and every
    connection is checked again (`GuardedBackend`)."""
    parts = urlsplit(url or default)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadUrl(f"The base URL must be an http:// or https:// URL with a host, not {url!r}.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BadUrl(f"The base URL has an invalid port: {url!r}.") from None
    try:
        await resolve_checked(parts.hostname, port, allow_local)
    except Unresolvable:
        return


class GuardedBackend:
    """An httpcore network backend that connects only to checked addresses of a host. `core` is the httpcore
    module of the client (httpx's `httpcore`, or `httpcore2` under the Anthropic and OpenAI SDKs), whose
    errors the client understands."""

    def __init__(self, inner: Any, allow_local: bool, core: ModuleType = httpcore):
        self.inner = inner
        self.allow_local = allow_local
        self.core = core

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> Any:
        try:
            addresses = await resolve_checked(host, port, self.allow_local)
        except BlockedAddress as exc:
            raise self.core.ConnectError(REFUSED + str(exc)) from None
        last: Exception | None = None
        for address in addresses:  # TLS still verifies `host`: httpcore passes it as the server name
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (self.core.ConnectError, self.core.ConnectTimeout, OSError) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> Any:
        raise self.core.ConnectError(REFUSED + "the AI worker does not connect to unix sockets.")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guarded_transport(allow_local: bool, client: ModuleType = httpx, core: ModuleType = httpcore) -> Any:
    """A transport of the `client` module (httpx, or httpx2 for the SDKs) whose every connection, redirects
    included, goes through `GuardedBackend`."""
    transport = client.AsyncHTTPTransport()
    pool = transport._pool  # neither httpx nor httpx2 has a parameter for httpcore's network backend
    pool._network_backend = GuardedBackend(pool._network_backend, allow_local, core)
    return transport
