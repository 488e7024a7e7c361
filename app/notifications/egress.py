"""Where webhooks may point: http(s) URLs whose host resolves to public addresses only.

The server POSTs to URLs its users chose, from inside the hosting network: without this check a webhook
could reach the database, a cloud metadata endpoint or an admin console (SSRF). The name is resolved again
at every delivery and the request goes to the address that was checked (Host header and TLS SNI keep the
name), so a DNS answer that changes after the check (rebinding) cannot redirect it inward. Redirects are
not followed. `webhook_allow_private_targets` lifts the address rule for on-premises receivers and tests.
"""

from __future__ import annotations

import ipaddress
import socket

import httpx


class TargetNotAllowed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse(url: str) -> httpx.URL:
    """The URL, if it is an absolute http(s) URL with a host and without credentials or a fragment."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as error:
        raise TargetNotAllowed("not a valid URL") from error
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise TargetNotAllowed("only http and https URLs with a host")
    if parsed.userinfo or parsed.fragment:
        raise TargetNotAllowed("no credentials or fragment in the URL")
    return parsed


# IPv6 prefixes whose addresses carry an IPv4 address in their last 32 bits: IPv4-mapped and -translated
# (RFC 4291, 2765), IPv4-compatible (deprecated, RFC 4291) and the NAT64 well-known prefix (RFC 6052). A
# NAT64 gateway or a dual stack delivers them to that IPv4 address, so that address is what must be public.
_LAST_32_BITS_IPV4 = tuple(
    ipaddress.IPv6Network(prefix) for prefix in ("::ffff:0:0/96", "::ffff:0:0:0/96", "::/96", "64:ff9b::/96")
)
# Never a public destination, whatever they embed: NAT64 local-use (RFC 8215, the embedded address's place
# depends on a prefix length only its operator knows) and site-local (deprecated, RFC 3879).
_NEVER_PUBLIC_IPV6 = tuple(ipaddress.IPv6Network(prefix) for prefix in ("64:ff9b:1::/48", "fec0::/10"))
_MAX_IPV4 = 0xFFFFFFFF


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address wraps and would reach: 6to4 (RFC 3056), Teredo (RFC 4380: its
    server and its client) and the last-32-bits forms above."""
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    if any(ip in network for network in _LAST_32_BITS_IPV4):
        return [ipaddress.IPv4Address(int(ip) & _MAX_IPV4)]
    return []


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local or any(ip in network for network in _NEVER_PUBLIC_IPV6):
            return False
        embedded = _embedded_ipv4(ip)
        if embedded:
            return all(_is_public(str(inner)) for inner in embedded)
    return ip.is_global and not ip.is_multicast


def _ascii_host(url: httpx.URL) -> str:
    return url.raw_host.decode("ascii")


def resolve(url: httpx.URL, allow_private: bool) -> str:
    """An address of the URL's host that the delivery may connect to."""
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(_ascii_host(url), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise TargetNotAllowed("the host does not resolve") from error
    addresses = [str(info[4][0]) for info in infos]
    if not allow_private and not all(_is_public(address) for address in addresses):
        raise TargetNotAllowed("the host resolves to a private, loopback or reserved address")
    return addresses[0]


def pinned_request(url: httpx.URL, address: str) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """(URL to the checked address, headers, extensions) that still present the original host name."""
    host = _ascii_host(url)
    host = f"[{host}]" if ":" in host else host
    host_header = host if url.port is None else f"{host}:{url.port}"
    extensions = {"sni_hostname": _ascii_host(url)} if url.scheme == "https" else {}
    return url.copy_with(host=address), {"Host": host_header}, extensions
