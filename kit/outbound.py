"""Outbound HTTP to addresses that tenants choose: page summaries, plate webhooks, insight updates.

A tenant picks the URL, so the URL must not become a way into Imago's own network (SSRF).
Every connection, the first and each redirect's, resolves the host once and refuses loopback,
private, link-local, reserved, shared (CGNAT) and multicast addresses, including an IPv4 address
hidden in an IPv6 one (mapped, compatible, NAT64, 6to4, Teredo), unless OUTBOUND_ALLOWED_HOSTS
(or its older name AI_FETCH_ALLOWED_HOSTS) names the host or a network holding the address. The
check sits in the transport's connect, so the address checked is the address connected to: a
second DNS answer cannot swap in another. Each request has one deadline for all its hops and reads,
and a cap on the bytes read back.

Calls to the AI providers and to S3 do not come here: the operator sets those hosts.
"""

import hashlib
import hmac
import ipaddress
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from rest_framework import serializers

from kit.errors import DomainError

SIGNATURE_HEADER = "X-Imago-Signature"
TIMESTAMP_HEADER = "X-Imago-Timestamp"

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# IPv6 forms that carry an IPv4 address in their low 32 bits; Python calls most of them global.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# Local-use NAT64 (RFC 8215): the IPv4 address may sit anywhere in it, so none is allowed.
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


class OutboundError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class BlockedAddress(OutboundError):
    def __init__(self, detail: str) -> None:
        super().__init__("blocked_address", detail)


class InvalidUrl(OutboundError):
    def __init__(self, detail: str) -> None:
        super().__init__("invalid_url", detail)


@dataclass(frozen=True)
class AllowList:
    hosts: frozenset[str]
    networks: tuple[IpNetwork, ...]

    @classmethod
    def parse(cls, entries: list[str]) -> "AllowList":
        hosts, networks = set(), []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.lower())
        return cls(frozenset(hosts), tuple(networks))

    @classmethod
    def from_settings(cls) -> "AllowList":
        return cls.parse([*settings.OUTBOUND_ALLOWED_HOSTS, *settings.AI_FETCH_ALLOWED_HOSTS])

    @classmethod
    def everything(cls) -> "AllowList":
        return cls.parse(["0.0.0.0/0", "::/0"])

    def allows(self, host: str, address: IpAddress) -> bool:
        return host.lower() in self.hosts or any(address in net for net in self.networks)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    if address.ipv4_mapped:
        return [address.ipv4_mapped]
    if address in NAT64 or address in IPV4_COMPATIBLE:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address.sixtofour:
        return [address.sixtofour]
    if address.teredo:
        return list(address.teredo)  # the relay server and the (de-obfuscated) client
    return []


def is_public(address: IpAddress) -> bool:
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        return address not in NAT64_LOCAL and all(map(is_public, _embedded_ipv4(address)))
    return True


def host_check(host: str) -> str:
    """The host without brackets; InvalidUrl for a number that is not a dotted quad.

    getaddrinfo reads 2130706433, 0177.0.0.1, 0x7f.1 and 127.1 as 127.0.0.1; no real name ends in
    a numeric label, so such a host must be a plain IP address or nothing.
    """
    bare = host.strip("[]").rstrip(".")
    if not bare:
        raise InvalidUrl("The URL has no host.")
    last = bare.rsplit(".", 1)[-1].lower()
    if ":" not in bare and (last.isdigit() or last.startswith("0x")):
        try:
            ipaddress.IPv4Address(bare)
        except ValueError:
            raise InvalidUrl(f"{host} is neither a host name nor a dotted IPv4 address.") from None
    return bare


def checked_addresses(host: str, port: int, allowed: AllowList) -> list[str]:
    """The host's addresses, all of them permitted, or BlockedAddress."""
    bare = host_check(host)
    try:
        infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OutboundError("unreachable", f"The host {host} does not resolve: {exc}.") from exc
    except ValueError as exc:  # IDNA refuses the name: an empty or overlong label
        raise InvalidUrl(f"{host} is not a valid host name.") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for text in addresses:
        address = ipaddress.ip_address(text.split("%")[0])
        if not is_public(address) and not allowed.allows(bare, address):
            raise BlockedAddress(
                f"{host} resolves to {address}, a loopback, private, link-local or reserved "
                "address (or one hidden in IPv6): Imago does not send requests there."
            )
    return addresses


def _parsed(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise InvalidUrl(f"The URL is malformed: {exc}.") from exc
    if parsed.scheme not in ("http", "https"):
        raise BlockedAddress("Only http and https URLs are allowed.")
    host_check(parsed.host)
    return parsed


def url_check(url: str) -> None:
    """Refuse, when a tenant saves it, a URL that could not be delivered to (DNS is asked again at
    each delivery). A host that does not resolve yet is accepted: the receiver may come later."""
    parsed = _parsed(url)
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        checked_addresses(parsed.host, port, AllowList.from_settings())
    except OutboundError as exc:
        if exc.code != "unreachable":  # the name does not resolve (yet)
            raise


def url_validator(url: str) -> None:
    """For model fields that the admin edits (a form error instead of an API error)."""
    try:
        url_check(url)
    except OutboundError as exc:
        raise ValidationError(exc.detail, code=exc.code) from exc


class OutboundUrlField(serializers.URLField):
    """A URL Imago will POST to: 400 blocked_address or invalid_url when saved, not when sent."""

    def to_internal_value(self, data: Any) -> str:
        url = super().to_internal_value(data)
        # Before URLField's validators, so that 0177.0.0.1 answers invalid_url like everywhere.
        if url:
            try:
                url_check(url)
            except OutboundError as exc:
                raise DomainError(exc.code, exc.detail, 400) from exc
        return url


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def timeout(self, timeout: float | None, error: type[Exception]) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise error("The request ran past its deadline.")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """Each read and write waits at most until the request's deadline: a server trickling a byte
    at a time cannot hold the request longer than that."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self.stream = stream
        self.deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, self.deadline.timeout(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, self.deadline.timeout(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout = self.deadline.timeout(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self.stream.start_tls(ssl_context, server_hostname, timeout), self.deadline
        )

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


class _GuardedBackend(httpcore.SyncBackend):
    def __init__(self, allowed: AllowList, deadline: _Deadline) -> None:
        self.allowed = allowed
        self.deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        last_error: Exception | None = None
        for address in checked_addresses(host, port, self.allowed):
            timeout = self.deadline.timeout(timeout, httpcore.ConnectTimeout)
            try:
                stream = super().connect_tcp(address, port, timeout, local_address, socket_options)
                return _DeadlineStream(stream, self.deadline)
            except httpcore.ConnectError as exc:
                last_error = exc
        raise last_error or httpcore.ConnectError(f"No address for {host}")


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, backend: _GuardedBackend) -> None:
        super().__init__(trust_env=False)
        # The pool httpx builds, with the guarded backend in place of the plain one.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=backend
        )


@contextmanager
def _client(
    deadline: float, max_redirects: int, allowed: AllowList | None = None
) -> Iterator[httpx.Client]:
    backend = _GuardedBackend(allowed or AllowList.from_settings(), _Deadline(deadline))
    client = httpx.Client(
        transport=_GuardedTransport(backend),
        follow_redirects=max_redirects > 0,
        max_redirects=max_redirects,
        timeout=deadline,
        # Bodies are read as sent (read_capped): one gzip chunk can inflate a thousandfold past
        # the size cap before it is counted.
        headers={"Accept-Encoding": "identity"},
    )
    try:
        with client:
            yield client
    except httpx.InvalidURL as exc:
        raise InvalidUrl(f"The URL is malformed: {exc}.") from exc
    except httpx.UnsupportedProtocol as exc:
        raise BlockedAddress("Only http and https URLs are allowed (redirects too).") from exc


@contextmanager
def stream(
    method: str, url: str, *, deadline: float, max_redirects: int = 0, **kwargs: Any
) -> Iterator[httpx.Response]:
    """An open response to read with `read_capped`; all hops and reads within `deadline` seconds.

    Raises OutboundError, or httpx.HTTPError (httpx.TimeoutException past the deadline).
    """
    _parsed(url)
    with (
        _client(deadline, max_redirects) as client,
        client.stream(method, url, **kwargs) as response,
    ):
        yield response


def read_capped(response: httpx.Response, *, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of the body as sent, and whether there was more (left unread).

    A body compressed although Imago asked for none is read as it is, never inflated.
    """
    chunks, size = [], 0
    for chunk in response.iter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


@dataclass(frozen=True)
class Answer:
    status_code: int
    text: str

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


# Webhook receivers answer a status; their body is only kept (shortened) to explain a failure.
WEBHOOK_BODY_LIMIT = 64 * 1024


def webhook_post(url: str, *, secret: str, trusted: bool = False, **body: Any) -> Answer:
    """POST `body` (httpx's content=, data=, files=, headers=) signed with `secret` when set,
    without following redirects, within WEBHOOK_TIMEOUT. `trusted`: the operator set the URL (in
    the environment), so it may be internal; a tenant's URLs never are.

    Raises OutboundError, or httpx.HTTPError when nothing was answered.
    """
    _parsed(url)
    allowed = AllowList.everything() if trusted else None
    with _client(settings.WEBHOOK_TIMEOUT, max_redirects=0, allowed=allowed) as client:
        request = client.build_request("POST", url, **body)
        timestamp = str(int(time.time()))
        request.headers[TIMESTAMP_HEADER] = timestamp
        if secret:
            request.headers[SIGNATURE_HEADER] = sign(secret, timestamp, request.read())
        response = client.send(request, stream=True)
        try:
            text, _ = read_capped(response, limit=WEBHOOK_BODY_LIMIT)
        finally:
            response.close()
        return Answer(response.status_code, text.decode(errors="replace"))
