"""A local, independent stand-in for Buy with Prime (authorize page, token endpoint, GraphQL API
and ``verification-token`` signing), for tests and the local demo.  Imports nothing from ``src/``.
"""

from sandbox.oauth import AuthorizeError, IssuedAccessToken, pkce_challenge
from sandbox.server import BuyWithPrimeSandbox
from sandbox.signing import VerificationSigner, body_hash, request_hash

__all__ = [
    "AuthorizeError",
    "BuyWithPrimeSandbox",
    "IssuedAccessToken",
    "VerificationSigner",
    "body_hash",
    "pkce_challenge",
    "request_hash",
]
