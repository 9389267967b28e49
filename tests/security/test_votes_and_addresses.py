"""One anonymous caller cannot decide an insight: the client address comes from the socket (or
from X-Forwarded-For only behind TRUSTED_PROXIES), and deciding votes need distinct addresses."""

import pytest
from django.test import RequestFactory
from rest_framework.test import APIClient

from annotations.models import AnnotationVote, Insight
from kit.addresses import address_key, client_address
from tests.annotations.support import make_public
from tests.factories import InsightFactory

ANNOTATE = "/api/v1/insights/annotate"


@pytest.fixture
def anonymous(db) -> APIClient:
    return APIClient()


@pytest.fixture
def public_insight(owner) -> Insight:
    """An open label insight of a tenant that lets anonymous callers vote; no store to update."""
    make_public(owner)
    return InsightFactory(client=owner.client, barcode="3017620422003", value_tag="en:organic")


def answer_from(anonymous, insight, value: int, address: str, device: str = "", **headers: str):
    """An anonymous answer from a peer address (REMOTE_ADDR), with extra headers."""
    payload = {"insight_id": str(insight.id), "annotation": value}
    if device:
        payload["device_id"] = device
    return anonymous.post(ANNOTATE, payload, REMOTE_ADDR=address, **headers)


def vote_from(anonymous, insight, device: str, address: str, **headers: str) -> dict:
    return answer_from(anonymous, insight, 1, address, device, **headers).json()


def test_three_device_ids_from_one_address_do_not_decide_an_insight(anonymous, public_insight):
    statuses = [vote_from(anonymous, public_insight, d, "203.0.113.7")["status"] for d in "abc"]

    assert statuses == ["vote_saved"] * 3
    public_insight.refresh_from_db()
    assert public_insight.annotation is None
    assert public_insight.n_votes == 3
    # What identifies the address is kept, keyed, never the address itself.
    hashes = set(AnnotationVote.objects.values_list("address_hash", flat=True))
    assert len(hashes) == 1 and "203.0.113" not in hashes.pop()


def test_three_devices_from_three_addresses_decide_it(anonymous, public_insight):
    vote_from(anonymous, public_insight, "a", "203.0.113.7")
    vote_from(anonymous, public_insight, "b", "203.0.113.8")

    third = vote_from(anonymous, public_insight, "c", "2001:db8::9")

    assert third["status"] == "saved"
    public_insight.refresh_from_db()
    assert public_insight.annotation == 1


def test_an_address_counts_once_even_when_its_devices_disagree(anonymous, public_insight):
    answer_from(anonymous, public_insight, 0, "203.0.113.7", "a")
    answer_from(anonymous, public_insight, 0, "203.0.113.7", "b")
    answer_from(anonymous, public_insight, 1, "203.0.113.8", "c")

    # Two "no" from one address and one "yes" elsewhere: 1 against 1, not 2 against 1.
    fourth = answer_from(anonymous, public_insight, 1, "203.0.113.8", "d")

    assert fourth.json()["status"] == "vote_saved"
    public_insight.refresh_from_db()
    assert public_insight.annotation is None


def test_three_addresses_of_one_ipv6_64_do_not_decide_an_insight(anonymous, public_insight):
    # A home IPv6 connection is given a whole /64: one address each would be one vote each.
    addresses = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ff::3"]
    for device, address in zip("abc", addresses, strict=True):
        assert vote_from(anonymous, public_insight, device, address)["status"] == "vote_saved"

    public_insight.refresh_from_db()
    assert public_insight.annotation is None
    assert len(set(AnnotationVote.objects.values_list("address_hash", flat=True))) == 1


def test_three_ipv6_64s_decide_an_insight(anonymous, public_insight):
    vote_from(anonymous, public_insight, "a", "2001:db8:1:1::1")
    vote_from(anonymous, public_insight, "b", "2001:db8:1:2::1")

    third = vote_from(anonymous, public_insight, "c", "2001:db8:1:3::1")

    assert third["status"] == "saved"
    public_insight.refresh_from_db()
    assert public_insight.annotation == 1


def test_the_addresses_of_one_ipv6_64_share_the_anonymous_rate_limit(anonymous, settings):
    settings.INSIGHT_ANONYMOUS_RATE = "2/min"

    def get(address: str) -> int:
        return anonymous.get("/api/v1/questions", REMOTE_ADDR=address).status_code

    assert [get(f"2001:db8:1:2::{n}") for n in range(1, 4)] == [200, 200, 429]
    assert get("2001:db8:1:3::1") == 200  # another /64, another client
    # IPv4 addresses stand alone, however close.
    assert [get(f"203.0.113.{n}") for n in range(1, 4)] == [200, 200, 200]


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("::1", "::/64"),
        ("unknown", "unknown"),
        ("", ""),
    ],
)
def test_the_address_key_is_the_ipv6_64_or_the_ipv4_address(address, key):
    assert address_key(address) == key


def test_a_forged_forwarded_for_changes_no_vote_identity(anonymous, public_insight):
    for n in range(3):
        forged = f"198.51.100.{n}"
        vote_from(anonymous, public_insight, f"d{n}", "203.0.113.7", HTTP_X_FORWARDED_FOR=forged)

    public_insight.refresh_from_db()
    assert public_insight.annotation is None


def test_a_forged_forwarded_for_does_not_dodge_the_anonymous_rate_limit(anonymous, settings):
    settings.INSIGHT_ANONYMOUS_RATE = "2/min"
    statuses = [
        anonymous.get(
            "/api/v1/questions", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}"
        ).status_code
        for n in range(3)
    ]

    assert statuses == [200, 200, 429]


def test_without_device_id_a_forged_forwarded_for_is_the_same_device(anonymous, public_insight):
    first = answer_from(anonymous, public_insight, 1, "203.0.113.7")
    forged = answer_from(
        anonymous, public_insight, 1, "203.0.113.7", HTTP_X_FORWARDED_FOR="192.0.2.1"
    )

    assert first.json()["status"] == "vote_saved"
    assert forged.json()["status"] == "error_already_annotated"


def test_behind_a_trusted_proxy_the_forwarded_client_counts(anonymous, public_insight, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    for device, client in zip("abc", ["198.51.100.1", "198.51.100.2", "2001:db8::3"], strict=True):
        # The left-most entry is whatever the caller sent; the proxy appended the real client.
        sent = f"192.0.2.99, {client}"
        vote_from(anonymous, public_insight, device, "10.0.0.5", HTTP_X_FORWARDED_FOR=sent)

    public_insight.refresh_from_db()
    assert public_insight.annotation == 1


def test_behind_a_trusted_proxy_each_client_has_its_own_rate_limit(anonymous, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    settings.INSIGHT_ANONYMOUS_RATE = "1/min"

    def get(forwarded: str) -> int:
        return anonymous.get(
            "/api/v1/questions", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=forwarded
        ).status_code

    assert get("198.51.100.1") == 200
    assert get("198.51.100.2") == 200
    # A client that prepends addresses of its own is still the client the proxy saw.
    assert get("192.0.2.50, 198.51.100.1") == 429


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.7", "", "203.0.113.7"),
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),  # untrusted peer: header ignored
        ("10.0.0.5", "", "10.0.0.5"),
        ("10.0.0.5", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.5", "192.0.2.1, 198.51.100.1", "198.51.100.1"),  # right-most untrusted hop
        ("10.0.0.5", "198.51.100.1, 10.0.0.9", "198.51.100.1"),  # through two trusted proxies
        ("10.0.0.5", "10.0.0.8,10.0.0.9", "10.0.0.8"),  # every hop trusted: the farthest
        ("10.0.0.5", "not-an-ip, 198.51.100.1", "198.51.100.1"),
        ("10.0.0.5", "198.51.100.1, not-an-ip", "10.0.0.5"),  # a proxy's garbage: the proxy
        ("10.0.0.5", "[2001:db8::1]", "2001:db8::1"),
        ("::ffff:10.0.0.5", "198.51.100.1", "198.51.100.1"),
        ("", "198.51.100.1", ""),
    ],
)
def test_the_client_address_of_a_request(settings, peer, forwarded, expected):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = RequestFactory().get("/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded)

    assert client_address(request) == expected
