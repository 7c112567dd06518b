"""The hub's requests to the outside: verification of intent, denials, content distribution
(the Recommendation's sections 5.2, 5.3 and 7), and publish pings to outside hubs.

Callbacks are reached through the address policy (public addresses only, checked on the
address connected to, unless ``websub: allow_private_callbacks``); redirects are never
followed; no answer is read beyond what is needed (a challenge's length), so a slow or huge
answer costs one bounded request and nothing more.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlencode

import requests

from feedhub.cache import Representation
from feedhub.guarded_http import ReadRefused, failure_reason, new_session, read_capped
from feedhub.limits import CALLBACK_CONNECT_TIMEOUT, CALLBACK_TIMEOUT, MAX_CHALLENGE_ANSWER_BYTES
from feedhub.websub.store import HubRequest, Intent, Subscription

ALLOWING_KEY = "websub: allow_private_callbacks"
SIGNATURE_HEADER = "X-Hub-Signature"


class DeliveryResult(Enum):
    DELIVERED = "delivered"
    FAILED = "failed"  # tried again later
    GONE = "gone"  # 410: the subscriber wants no more (the Recommendation lets the hub end it)


@dataclass(frozen=True)
class Outcome:
    result: DeliveryResult
    reason: str | None = None


def signature(secret: str, body: bytes) -> str:
    """The X-Hub-Signature value of a body for a subscription's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def with_query(url: str, params: dict[str, str]) -> str:
    """The callback URL with hub.* parameters added to whatever query it already has."""
    return url + ("&" if "?" in url else "?") + urlencode(params)


class CallbackClient:
    def __init__(self, user_agent: str, allow_private: bool) -> None:
        self.user_agent = user_agent
        self.allow_private = allow_private
        self._local = threading.local()

    def verify(self, request: HubRequest, lease_seconds: int) -> str | None:
        """Ask the callback to confirm a (un)subscription; None when it echoed the challenge."""
        challenge = secrets.token_urlsafe(24)
        params = {"hub.mode": request.intent.value, "hub.topic": request.topic, "hub.challenge": challenge}
        if request.intent is Intent.SUBSCRIBE:
            params["hub.lease_seconds"] = str(lease_seconds)
        try:
            with self._callbacks().get(
                with_query(request.callback, params),
                timeout=(CALLBACK_CONNECT_TIMEOUT, CALLBACK_TIMEOUT),
                stream=True,
                allow_redirects=False,
            ) as response:
                if not 200 <= response.status_code < 300:
                    return f"the callback answered {response.status_code} {response.reason}"
                answer = read_capped(response, MAX_CHALLENGE_ANSWER_BYTES, _deadline())
        except requests.RequestException as exc:
            return failure_reason(exc, CALLBACK_TIMEOUT, ALLOWING_KEY)
        except ReadRefused as exc:
            return exc.reason
        if not hmac.compare_digest(answer, challenge.encode()):
            return "the callback did not echo the challenge"
        return None

    def deny(self, request: HubRequest) -> str | None:
        """Tell the callback its request is refused; None when it took the notice."""
        params = {"hub.mode": "denied", "hub.topic": request.topic, "hub.reason": request.reason or "denied"}
        try:
            with self._callbacks().get(
                with_query(request.callback, params),
                timeout=(CALLBACK_CONNECT_TIMEOUT, CALLBACK_TIMEOUT),
                stream=True,
                allow_redirects=False,
            ) as response:
                ok = 200 <= response.status_code < 300
                return None if ok else f"the callback answered {response.status_code} {response.reason}"
        except requests.RequestException as exc:
            return failure_reason(exc, CALLBACK_TIMEOUT, ALLOWING_KEY)

    def deliver(self, subscription: Subscription, content: Representation) -> Outcome:
        """POST the topic's whole body, signed when the subscription has a secret."""
        headers = {"Content-Type": content.content_type}
        if content.links:
            headers["Link"] = content.links
        if subscription.secret:
            headers[SIGNATURE_HEADER] = signature(subscription.secret, content.body)
        try:
            with self._callbacks().post(
                subscription.callback,
                data=content.body,
                headers=headers,
                timeout=(CALLBACK_CONNECT_TIMEOUT, CALLBACK_TIMEOUT),
                stream=True,  # the answer's body is never read
                allow_redirects=False,
            ) as response:
                if 200 <= response.status_code < 300:
                    return Outcome(DeliveryResult.DELIVERED)
                reason = f"the callback answered {response.status_code} {response.reason}"
                gone = response.status_code == 410
                return Outcome(DeliveryResult.GONE if gone else DeliveryResult.FAILED, reason)
        except requests.RequestException as exc:
            return Outcome(DeliveryResult.FAILED, failure_reason(exc, CALLBACK_TIMEOUT, ALLOWING_KEY))

    def ping(self, hub: str, topic: str) -> str | None:
        """Tell an outside hub (the operator's, so trusted as written) that a topic changed."""
        return self.post_form(hub, {"hub.mode": "publish", "hub.url": topic}, guarded=False)

    def post_form(self, url: str, form: dict[str, str], guarded: bool) -> str | None:
        """POST a hub.* form to a hub; None when it answered 2xx, else why not."""
        try:
            with self._session("guarded" if guarded else "hubs", guarded).post(
                url,
                data=form,
                timeout=(CALLBACK_CONNECT_TIMEOUT, CALLBACK_TIMEOUT),
                stream=True,
                allow_redirects=False,
            ) as response:
                ok = 200 <= response.status_code < 300
                return None if ok else f"the hub answered {response.status_code} {response.reason}"
        except requests.RequestException as exc:
            return failure_reason(
                exc, CALLBACK_TIMEOUT, "allow_private_addresses" if guarded else ALLOWING_KEY
            )

    def _callbacks(self) -> requests.Session:
        return self._session("callbacks", guarded=not self.allow_private)

    def _session(self, name: str, guarded: bool) -> requests.Session:
        # requests' sessions are not thread-safe: one per thread, which keeps connections alive too
        sessions: dict[str, requests.Session] = self._local.__dict__.setdefault("sessions", {})
        if name not in sessions:
            sessions[name] = new_session(self.user_agent, guarded)
        return sessions[name]


def _deadline() -> float:
    return time.monotonic() + CALLBACK_TIMEOUT
