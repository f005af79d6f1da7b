"""schemathesis hooks of the inbound run of scripts/api_fuzz.py (``SCHEMATHESIS_HOOKS=api_fuzz_hooks``).

The inbound webhooks authenticate each request by a signature of its exact body, which no schema-driven
generator can compute: this hook replaces the signature header of every generated request that carries one
by the right signature over the bytes actually sent (a ``requests`` auth runs after the body is serialized),
so the fuzzer gets past the signature and exercises validation. The document declares the header as a plain
required string (its format is in the description), so negative cases mutate the body, not the header; a
case that leaves the header out is sent without one and must be refused (401/400).

Secrets come from the environment: ``RETAIN_FUZZ_TRACKER_SECRET``, ``RETAIN_FUZZ_HELPDESK_SECRET`` (the
hooks' derived secrets) and ``RETAIN_FUZZ_STRIPE_SECRET`` (the Stripe connection's signing secret).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from typing import Any

import schemathesis
from requests.auth import AuthBase

#: path suffix → (header, secret variable, Stripe's scheme)
SIGNED = {
    "/tracker/": ("X-Hub-Signature", "RETAIN_FUZZ_TRACKER_SECRET", False),
    "/helpdesk/": ("X-Hub-Signature", "RETAIN_FUZZ_HELPDESK_SECRET", False),
    "/stripe/": ("Stripe-Signature", "RETAIN_FUZZ_STRIPE_SECRET", True),
}


class Sign(AuthBase):
    """Sets the signature header over the prepared request's body."""

    def __init__(self, header: str, secret: str, stripe: bool) -> None:
        self.header, self.secret, self.stripe = header, secret.encode(), stripe

    def __call__(self, request: Any) -> Any:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        if self.stripe:  # Stripe's scheme: HMAC-SHA256 of "<t>.<body>"
            stamp = int(time.time())
            digest = hmac.new(self.secret, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
            request.headers[self.header] = f"t={stamp},v1={digest}"
        else:
            request.headers[self.header] = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        return request


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    for suffix, (header, variable, stripe) in SIGNED.items():
        if not case.operation.path.endswith(suffix):
            continue
        value = (case.headers or {}).get(header)
        if isinstance(value, str) and os.environ.get(variable):
            kwargs["auth"] = Sign(header, os.environ[variable], stripe)
        return
