"""Outbound requests to tenants' URLs never reach Imago's own network, and end in time and size.

A tenant chooses the plate webhooks (per task, per tenant), an operator the insights store, a caller
the page to summarise: each is refused when it is saved and again when it is sent (DNS may change).
"""

import contextlib
import http.server
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator

import pytest
from django.test import Client
from rest_framework.test import APIClient

from annotations.models import InsightSettings
from images.models import AnonymizeSettings, CoverMode, PlateTask
from images.plates import delivery
from kit import outbound
from tests.ai.support import FakeServer, Reply
from tests.annotations.support import answers, make_public
from tests.factories import InsightFactory, PlateTaskFactory
from tests.helpers import Tenant, image_bytes, upload_file

# Each names 127.0.0.1 (or an internal network) in another spelling; {port} is a live receiver's.
BLOCKED = {
    "loopback": "http://127.0.0.1:{port}/hook",
    "localhost": "http://localhost:{port}/hook",
    "ipv6 loopback": "http://[::1]:{port}/hook",
    "cloud metadata": "http://169.254.169.254/latest/meta-data/",
    "private network": "http://10.1.2.3/hook",
    "carrier-grade nat": "http://100.64.0.1/hook",
    "this network": "http://0.0.0.0:{port}/hook",
    "multicast": "http://224.0.0.1/hook",
    "ipv4-mapped": "http://[::ffff:127.0.0.1]:{port}/hook",
    "ipv4-compatible": "http://[::127.0.0.1]:{port}/hook",
    "nat64": "http://[64:ff9b::127.0.0.1]:{port}/hook",
    "local nat64": "http://[64:ff9b:1::7f00:1]:{port}/hook",
    "6to4": "http://[2002:7f00:1::1]:{port}/hook",
    "teredo": "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:{port}/hook",
}
MALFORMED = {
    "octal": "http://0177.0.0.1/hook",
    "decimal integer": "http://2130706433/hook",
    "hex integer": "http://0x7f000001/hook",
    "short dotted": "http://127.1/hook",
    "empty label": "http://store..example/hook",
}


@pytest.fixture
def superuser(db, django_user_model) -> Client:
    user = django_user_model.objects.create_superuser("root", password="pw")
    browser = Client()
    browser.force_login(user)
    return browser


@pytest.fixture
def receiver() -> Iterator[FakeServer]:
    """A tenant's backend on 127.0.0.1: reachable only where the allow-list says so."""
    server = FakeServer()
    server.route("/hook", Reply(200, {"ok": True}))
    yield server
    server.close()


def undelivered_task(tenant: Tenant, **urls: str) -> PlateTask:
    """A finished task whose URLs were stored earlier (when the names resolved elsewhere)."""
    return PlateTaskFactory(
        client=tenant.client, status=PlateTask.Status.COMPLETED, mode=CoverMode.STUB, **urls
    )


def deliver(task: PlateTask) -> PlateTask:
    with pytest.raises(delivery.DeliveryFailed):
        delivery.plate_task_deliver(task_id=task.pk)
    task.refresh_from_db()
    return task


# Refused when saved -------------------------------------------------------------------------


@pytest.mark.parametrize("url", BLOCKED.values(), ids=BLOCKED.keys())
def test_tenant_webhooks_to_internal_addresses_are_refused_when_saved(owner, url):
    response = owner.api.patch(
        "/api/v1/anonymize/settings", {"callback_url": url.format(port=8000)}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (400, "blocked_address")
    assert not AnonymizeSettings.objects.filter(client=owner.client).exclude(callback_url="")


@pytest.mark.parametrize("url", BLOCKED.values(), ids=BLOCKED.keys())
def test_task_webhooks_to_internal_addresses_are_refused_when_saved(owner, url):
    response = owner.api.post(
        "/api/v1/process-task/",
        {"files": [upload_file("a.png", image_bytes("PNG"))], "upload_url": url.format(port=80)},
        format="multipart",
    )
    assert (response.status_code, response.json()["code"]) == (400, "blocked_address")
    assert not PlateTask.objects.exists()


@pytest.mark.parametrize("url", MALFORMED.values(), ids=MALFORMED.keys())
def test_numeric_hosts_that_are_not_dotted_quads_answer_invalid_url(owner, url):
    response = owner.api.patch("/api/v1/anonymize/settings", {"upload_url": url}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "invalid_url")
    response = owner.api.post("/api/v1/ai/summarize/", {"url": url}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "invalid_url")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://example.com/"])
def test_other_schemes_are_refused_when_saved(owner, url):
    response = owner.api.patch("/api/v1/anonymize/settings", {"callback_url": url}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] in ("blocked_address", "invalid")


def test_the_insights_store_address_is_checked_when_the_operator_saves_it(owner, superuser):
    response = superuser.post(
        "/admin/annotations/insightsettings/add/",
        {"client": owner.client.pk, "downstream_url": "http://169.254.169.254/latest/"},
    )
    assert response.status_code == 200  # the form again, with the error
    assert "link-local or reserved" in response.content.decode()
    assert not InsightSettings.objects.exists()


def test_an_intranet_named_by_the_operator_can_be_saved(owner, settings, receiver):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.0/8"]
    url = f"{receiver.url}/hook"
    response = owner.api.patch("/api/v1/anonymize/settings", {"callback_url": url}, format="json")
    assert (response.status_code, response.json()["callback_url"]) == (200, url)


# Refused when sent --------------------------------------------------------------------------


@pytest.mark.parametrize("url", BLOCKED.values(), ids=BLOCKED.keys())
def test_stored_webhooks_to_internal_addresses_are_not_delivered(owner, receiver, url):
    task = deliver(undelivered_task(owner, callback_url=url.format(port=receiver.port)))
    assert task.delivered_at is None
    [attempt] = task.attempts.all()
    assert attempt.error.startswith("blocked_address"), attempt.error
    assert receiver.received == []


def test_the_legacy_allow_list_name_still_lets_webhooks_reach_an_intranet(
    owner, receiver, settings
):
    settings.AI_FETCH_ALLOWED_HOSTS = ["127.0.0.1"]
    task = undelivered_task(owner, callback_url=f"{receiver.url}/hook")
    delivery.plate_task_deliver(task_id=task.pk)
    task.refresh_from_db()
    assert task.delivered_at is not None
    assert [r.path for r in receiver.received] == ["/hook"]


def test_a_webhook_redirect_is_not_followed(owner, receiver, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    receiver.route("/moved", Reply(307, "", {"Location": "http://169.254.169.254/latest/"}))
    task = deliver(undelivered_task(owner, callback_url=f"{receiver.url}/moved"))
    assert task.delivered_at is None
    assert [a.status_code for a in task.attempts.all()] == [307]
    assert [r.path for r in receiver.received] == ["/moved"]


def test_a_summary_redirect_to_an_internal_address_is_refused(owner, receiver, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    receiver.route("/go", Reply(302, "", {"Location": f"http://[::1]:{receiver.port}/hook"}))
    response = owner.api.post("/api/v1/ai/summarize/", {"url": f"{receiver.url}/go"})
    assert (response.status_code, response.json()["code"]) == (400, "blocked_address")
    assert [r.path for r in receiver.received] == ["/go"]


def test_the_insights_store_on_loopback_gets_nothing(owner, receiver):
    make_public(owner, downstream_url=f"{receiver.url}/hook")
    insight = InsightFactory(client=owner.client, value="Organic", predictor="ocr")
    body = answers(owner.api, insight, 1).json()
    assert (body["status_code"], body["status"]) == (10, "error_failed_update")
    assert "blocked_address" in body["description"]
    assert receiver.received == []


def test_an_anonymous_voter_is_not_told_where_the_store_is(owner, caplog):
    # The third anonymous vote applies the insight and sends it: the refusal's detail names the
    # tenant's store and the internal address it resolves to, which are for the log only.
    store = "http://10.1.2.3/internal-store/hook"
    make_public(owner, downstream_url=store)
    insight = InsightFactory(client=owner.client, value="Organic", predictor="ocr")
    voter = APIClient()
    for address in ("198.51.100.1", "198.51.100.2"):
        assert answers(voter, insight, 1, address=address).json()["status"] == "vote_saved"

    body = answers(voter, insight, 1, address="198.51.100.3").json()

    assert (body["status_code"], body["status"]) == (10, "error_failed_update")
    assert "blocked_address" in body["description"]
    assert "10.1.2.3" not in body["description"] and "internal-store" not in body["description"]
    assert "10.1.2.3 resolves to 10.1.2.3" in caplog.text  # the operator still reads why
    insight.refresh_from_db()
    assert insight.annotation is None


# Time and size ------------------------------------------------------------------------------


class RawServer:
    """A TCP server on 127.0.0.1 that answers every connection with `answer(sock)`."""

    def __init__(self, answer: Callable[[socket.socket], None], host: str = "127.0.0.1") -> None:
        self.listener = socket.create_server((host, 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.answer = answer
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.recv(65536)
            with contextlib.suppress(OSError):  # the client hung up: what these tests want
                self.answer(conn)
        self.done.set()

    def close(self) -> None:
        self.listener.close()


def trickle(conn: socket.socket) -> None:
    """8 bytes every 0.1 s for 8 s: each read is quick, the whole answer is not."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(80):
        conn.sendall(b"<p>....")
        time.sleep(0.1)


def test_a_trickling_page_is_cut_at_the_summary_deadline(owner, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.AI_FETCH_TIMEOUT = 1.0
    server = RawServer(trickle)
    started = time.monotonic()
    response = owner.api.post("/api/v1/ai/summarize/", {"url": f"{server.url}/"})
    elapsed = time.monotonic() - started
    server.close()
    assert (response.status_code, response.json()["code"]) == (502, "unreachable")
    assert elapsed < 2.5


def test_a_trickling_receiver_is_cut_at_the_webhook_deadline(owner, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_TIMEOUT = 1.0
    server = RawServer(trickle)
    started = time.monotonic()
    task = deliver(undelivered_task(owner, callback_url=f"{server.url}/hook"))
    elapsed = time.monotonic() - started
    server.close()
    assert task.delivered_at is None
    assert "Timeout" in task.attempts.get().error
    assert elapsed < 2.5


def test_a_receiver_answering_without_end_is_read_only_up_to_the_cap(owner, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    sent = []

    def flood(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        for _ in range(1024):  # 64 MiB at most
            conn.sendall(b"x" * 65536)
            sent.append(65536)

    server = RawServer(flood)
    task = undelivered_task(owner, callback_url=f"{server.url}/hook")
    delivery.plate_task_deliver(task_id=task.pk)
    assert server.done.wait(10)
    server.close()
    assert sum(sent) < 16 * 1024 * 1024  # the socket buffers, not the whole flood
    assert task.attempts.get().status_code == 200


# DNS: answered once, and the address checked is the address connected to --------------------


class Dns:
    """A resolver for names under .test (a remote service, faked); other names resolve normally.

    Each name answers its addresses in turn, the last one for ever after: a rebinding attacker.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, **answers: list[str]) -> None:
        self.answers = {f"{name}.test": list(addresses) for name, addresses in answers.items()}
        self.asked: list[str] = []
        self.real = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self)

    def __call__(self, host: str, port: object, *args: object, **kwargs: object) -> list:
        if host not in self.answers:
            return self.real(host, port, *args, **kwargs)
        self.asked.append(host)
        queue = self.answers[host]
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]


@pytest.fixture
def rebinder(receiver) -> Iterator[FakeServer]:
    """A second server on 127.0.0.2 at the receiver's port, where a rebound name points."""
    server = FakeServer.__new__(FakeServer)
    server.routes, server.replies, server.received = {}, [], []
    server.httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.2", receiver.port), FakeServer._handler(server)
    )
    threading.Thread(target=server.httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.close()


def test_a_name_is_resolved_once_and_its_checked_address_connected_to(
    receiver, rebinder, settings, monkeypatch
):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1/32"]
    dns = Dns(monkeypatch, store=["127.0.0.1", "127.0.0.2"])
    with outbound.stream("GET", f"http://store.test:{receiver.port}/hook", deadline=2) as reply:
        assert reply.status_code == 200
    assert dns.asked == ["store.test"]
    assert [r.path for r in receiver.received] == ["/hook"]
    assert rebinder.received == []


def test_a_name_that_rebinds_after_it_was_saved_is_refused_at_delivery(
    owner, receiver, rebinder, settings, monkeypatch
):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1/32"]
    Dns(monkeypatch, store=["127.0.0.1", "127.0.0.2"])
    url = f"http://store.test:{receiver.port}/hook"
    response = owner.api.patch("/api/v1/anonymize/settings", {"callback_url": url}, format="json")
    assert response.status_code == 200
    task = deliver(undelivered_task(owner, callback_url=url))
    assert task.attempts.get().error.startswith("blocked_address")
    assert (receiver.received, rebinder.received) == ([], [])


def test_a_compressed_answer_is_read_as_sent_never_inflated(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip
    bomb = b"".join(squeeze.compress(b"\0" * 2**20) for _ in range(256)) + squeeze.flush()

    def answer(conn: socket.socket) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(bomb)}\r\n\r\n"
        conn.sendall(head.encode() + bomb)

    server = RawServer(answer)
    tracemalloc.start()
    with outbound.stream("GET", f"{server.url}/", deadline=5) as response:
        assert response.request.headers["accept-encoding"] == "identity"
        _, more = outbound.read_capped(response, limit=2**16)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    server.close()
    assert more  # the bomb is over 64 KiB even compressed
    assert peak < 16 * 2**20  # 256 MiB once inflated
