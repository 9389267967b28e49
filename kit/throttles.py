"""A rate limit for callers without a key: they share none to be counted by, so their address is."""

import logging

import redis
from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from kit.addresses import address_key, client_address

logger = logging.getLogger(__name__)


class AddressRateThrottle(AnonRateThrottle):
    """DRF's anonymous throttle, by address; subclasses say their rate (get_rate) and scope."""

    def get_ident(self, request: Request) -> str:
        # Not DRF's, which believes any X-Forwarded-For (or trims it by NUM_PROXIES); an IPv6
        # caller by its /64, all of which it may use.
        return address_key(client_address(request))

    def allow_request(self, request: Request, view: APIView) -> bool:
        try:
            return super().allow_request(request, view)
        except redis.exceptions.RedisError as exc:
            # As for keyed callers: losing the limit for a moment beats refusing everyone.
            logger.warning("Anonymous rate limiting skipped, Redis unavailable: %s", exc)
            return True
