"""Fetching web pages for summaries without letting callers reach Imago's own network (SSRF).

Every connection, the first and each redirect's, resolves the host and refuses loopback, private,
link-local, reserved and multicast addresses unless AI_FETCH_ALLOWED_HOSTS names the host or a
network holding the address. The check sits in the transport's connect, so that the address
checked is the address connected to (a second DNS answer cannot swap in another).
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx
import trafilatura
from django.conf import settings

HTML_TYPES = ("text/html", "application/xhtml+xml")
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class FetchError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class BlockedAddress(FetchError):
    def __init__(self, detail: str) -> None:
        super().__init__("blocked_address", detail)


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

    def allows(self, host: str, address: IpAddress) -> bool:
        return host.lower() in self.hosts or any(address in net for net in self.networks)


def is_public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def checked_addresses(host: str, port: int, allowed: AllowList) -> list[str]:
    """The host's addresses, all of them permitted, or BlockedAddress."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError("unreachable", f"The host {host} does not resolve: {exc}.") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for text in addresses:
        address = ipaddress.ip_address(text.split("%")[0])
        if not is_public(address) and not allowed.allows(host.strip("[]"), address):
            raise BlockedAddress(
                f"{host} resolves to {address}, a loopback, private, link-local or reserved "
                "address: fetching it is not allowed."
            )
    return addresses


class GuardedBackend(httpcore.SyncBackend):
    def __init__(self, allowed: AllowList) -> None:
        self.allowed = allowed

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: object = None,
    ) -> httpcore.NetworkStream:
        last_error: Exception | None = None
        for address in checked_addresses(host, port, self.allowed):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last_error = exc
        raise last_error or httpcore.ConnectError(f"No address for {host}")


class GuardedTransport(httpx.HTTPTransport):
    def __init__(self, allowed: AllowList) -> None:
        super().__init__(trust_env=False)
        # The pool httpx builds, with the guarded backend in place of the plain one.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=GuardedBackend(allowed)
        )


@dataclass(frozen=True)
class Page:
    url: str
    title: str | None
    text: str


def page_fetch(url: str) -> Page:
    """The page's main text, extracted by trafilatura; FetchError with a stable code otherwise."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise BlockedAddress("Only http and https URLs with a host can be fetched.")
    body, final_url, charset = _download(url)
    html = body.decode(charset, errors="replace") if charset else body
    document = trafilatura.bare_extraction(html, url=final_url, with_metadata=True)
    text = (document.text or "").strip() if document else ""
    if not text:
        raise FetchError("not_html", "The page has no main text to summarise.")
    return Page(url=final_url, title=document.title, text=text)


def _download(url: str) -> tuple[bytes, str, str | None]:
    limit = settings.AI_FETCH_MAX_BYTES
    client = httpx.Client(
        transport=GuardedTransport(AllowList.parse(settings.AI_FETCH_ALLOWED_HOSTS)),
        follow_redirects=True,
        max_redirects=settings.AI_FETCH_MAX_REDIRECTS,
        timeout=settings.AI_FETCH_TIMEOUT,
        headers={"User-Agent": "Imago/1.0 (page summary)", "Accept": "text/html"},
    )
    try:
        with client, client.stream("GET", url) as response:
            if response.status_code >= 400:
                raise FetchError("unreachable", f"The page answered HTTP {response.status_code}.")
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type not in HTML_TYPES:
                raise FetchError("not_html", f"The page is {content_type or 'untyped'}, not HTML.")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise FetchError("too_large", f"The page is {declared} bytes; at most {limit}.")
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise FetchError("too_large", f"The page is larger than {limit} bytes.")
                chunks.append(chunk)
            return b"".join(chunks), str(response.url), response.charset_encoding
    except httpx.UnsupportedProtocol as exc:
        raise BlockedAddress("Only http and https URLs can be fetched (redirects too).") from exc
    except httpx.TooManyRedirects as exc:
        raise FetchError("unreachable", "The page redirects too many times.") from exc
    except httpx.TimeoutException as exc:
        raise FetchError("unreachable", "The page did not answer in time.") from exc
    except httpx.HTTPError as exc:
        raise FetchError("unreachable", f"The page could not be fetched: {exc}.") from exc
