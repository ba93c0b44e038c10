"""OAuth `state`, PKCE (RFC 7636, S256) and the browser-binding cookie's values."""

from __future__ import annotations

import base64
import hashlib
import secrets


def new_state() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def new_code_verifier() -> str:
    return secrets.token_urlsafe(48)  # 64 characters, within RFC 7636's 43..128


def code_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_browser_nonce() -> str:
    return secrets.token_urlsafe(32)


def binding_of(nonce: str) -> str:
    """What the table keeps of the cookie: its hash, so a table reader cannot forge the cookie."""
    return hashlib.sha256(nonce.encode("utf-8")).hexdigest()
