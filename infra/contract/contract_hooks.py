"""Schemathesis hooks of the contract suite: the phone-push signature as an
auth provider, so the push route is tested past its signature check and the
auth checks still see what an unsigned or wrongly signed push gets. The
phone signs `<timestamp>.<raw body>` (lowercase hex HMAC-SHA256) with the
push secret, here CONNECTOR_PUSH_SECRET."""

import hashlib
import hmac
import json
import os
import time

import schemathesis


def sent_bytes(body):
    """The body's bytes as requests sends them (`json=`: json.dumps with its
    defaults); none for a case without a body."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, (dict, list, int, float, bool)) or body is None:
        return json.dumps(body, allow_nan=False).encode()
    return b""


@schemathesis.auth().apply_to(path="/v1/health/push")
class PhonePushSignature:
    def get(self, case, context):
        return os.environ["CONNECTOR_PUSH_SECRET"]

    def set(self, case, secret, context):
        raw = sent_bytes(case.body)
        timestamp = str(int(time.time()))
        mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256)
        case.headers = dict(case.headers or {})
        case.headers["x-sync-timestamp"] = timestamp
        case.headers["x-sync-signature"] = mac.hexdigest()
