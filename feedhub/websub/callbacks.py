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
from typing import Any
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
            with self._send(self._callbacks(), "GET", with_query(request.callback, params)) as response:
                refused = _refusal("callback", response)
                if refused:
                    return refused
                answer = read_capped(
                    response, MAX_CHALLENGE_ANSWER_BYTES, time.monotonic() + CALLBACK_TIMEOUT
                )
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
            with self._send(self._callbacks(), "GET", with_query(request.callback, params)) as response:
                return _refusal("callback", response)
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
            # the answer's body is never read
            with self._send(
                self._callbacks(), "POST", subscription.callback, data=content.body, headers=headers
            ) as response:
                refused = _refusal("callback", response)
        except requests.RequestException as exc:
            return Outcome(DeliveryResult.FAILED, failure_reason(exc, CALLBACK_TIMEOUT, ALLOWING_KEY))
        if refused is None:
            return Outcome(DeliveryResult.DELIVERED)
        gone = response.status_code == 410
        return Outcome(DeliveryResult.GONE if gone else DeliveryResult.FAILED, refused)

    def ping(self, hub: str, topic: str) -> str | None:
        """Tell an outside hub (the operator's, so trusted as written) that a topic changed."""
        return self.post_form(hub, {"hub.mode": "publish", "hub.url": topic}, guarded=False)

    def post_form(self, url: str, form: dict[str, str], guarded: bool) -> str | None:
        """POST a hub.* form to a hub; None when it answered 2xx, else why not."""
        session = self._session("guarded" if guarded else "hubs", guarded)
        try:
            with self._send(session, "POST", url, data=form) as response:
                return _refusal("hub", response)
        except requests.RequestException as exc:
            return failure_reason(
                exc, CALLBACK_TIMEOUT, "allow_private_addresses" if guarded else ALLOWING_KEY
            )

    @staticmethod
    def _send(session: requests.Session, method: str, url: str, **options: Any) -> requests.Response:
        """One request out: bounded waits, no redirects followed, the body left unread."""
        return session.request(
            method,
            url,
            timeout=(CALLBACK_CONNECT_TIMEOUT, CALLBACK_TIMEOUT),
            stream=True,
            allow_redirects=False,
            **options,
        )

    def _callbacks(self) -> requests.Session:
        return self._session("callbacks", guarded=not self.allow_private)

    def _session(self, name: str, guarded: bool) -> requests.Session:
        # requests' sessions are not thread-safe: one per thread, which keeps connections alive too
        sessions: dict[str, requests.Session] = self._local.__dict__.setdefault("sessions", {})
        if name not in sessions:
            sessions[name] = new_session(self.user_agent, guarded)
        return sessions[name]


def _refusal(who: str, response: requests.Response) -> str | None:
    """None for a 2xx answer, else what it was."""
    if 200 <= response.status_code < 300:
        return None
    return f"the {who} answered {response.status_code} {response.reason}"
