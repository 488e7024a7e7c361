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


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
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
