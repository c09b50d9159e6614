"""Signed, expiring access URLs (DRS_AUTH=token): they work without any header, like S3's presigned URLs.

The signature is an HMAC-SHA256 over the object id, the access id and the expiry time, keyed by a key
derived from SECRET, so a URL opens one object by one access method until it expires, and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode


class Forbidden(Exception):
    pass


def key(secret: str) -> bytes:
    # Derived, so the signing key is never the service token itself.
    return hashlib.sha256(b"drsbox signed URLs\n" + secret.encode()).digest()


def signature(secret: str, object_id: str, access_id: str, expires: int) -> str:
    message = f"{object_id}\n{access_id}\n{expires}".encode()
    return hmac.new(key(secret), message, hashlib.sha256).hexdigest()


def sign(url: str, secret: str, object_id: str, access_id: str, lifetime: int) -> str:
    expires = int(time.time()) + lifetime
    query = urlencode({"expires": expires, "signature": signature(secret, object_id, access_id, expires)})
    return f"{url}?{query}"


def verify(secret: str, object_id: str, access_id: str, expires: str, given: str) -> None:
    """Raises Forbidden unless `given` signs this object and access id and has not expired."""
    if not expires.isdigit():
        raise Forbidden("malformed signed URL")
    if not hmac.compare_digest(signature(secret, object_id, access_id, int(expires)), given):
        raise Forbidden("invalid signature: this URL was not issued for this object")
    if int(expires) < time.time():
        raise Forbidden("the signed URL has expired: ask /access for a new one")
