"""The client's address: the one function throttles, votes and the admin lockout ask.

Votes and the anonymous rate limit count callers by address_key(): an IPv6 address by its /64.

X-Forwarded-For is a header anyone can send, so it is believed only when the peer (REMOTE_ADDR)
is one of the proxies the operator named in TRUSTED_PROXIES; then the client is the right-most
hop that is not itself a trusted proxy. Everything left of that hop was written by the caller.
"""

import functools
import ipaddress

from django.conf import settings
from django.http import HttpRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _networks(spec: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in spec)


def _parse(value: str) -> IPAddress | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]" or "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    # An IPv4 peer on a dual-stack socket reads ::ffff:a.b.c.d; compare it as IPv4.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress) -> bool:
    return any(address in network for network in _networks(tuple(settings.TRUSTED_PROXIES)))


def client_address(request: HttpRequest) -> str:
    """REMOTE_ADDR, or behind a trusted proxy the right-most untrusted X-Forwarded-For hop."""
    peer_text = request.META.get("REMOTE_ADDR", "")
    peer = _parse(peer_text)
    if peer is None or not _trusted(peer):
        return str(peer) if peer else peer_text
    client = peer
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            # Garbage where a trusted proxy should have written an address: the last address a
            # trusted hop vouched for is all that is known.
            break
        client = address
        if not _trusted(address):
            break
    return str(client)


def address_key(address: str) -> str:
    """Who an address stands for, as votes and the anonymous rate limit count callers: an IPv4
    address itself, an IPv6 address its /64 ("2001:db8:1:2::/64").

    One IPv6 subscriber (a home connection, a phone) is given a whole /64 and may pick any
    address in it, so counting IPv6 addresses one by one counts one caller as many. Text that is
    no address (an in-process caller's "unknown") is its own key.
    """
    parsed = _parse(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed) if parsed else address
