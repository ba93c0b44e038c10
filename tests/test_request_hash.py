"""Request-hash vectors: the verifier rebuilds exactly the URL and body Buy with Prime signed."""

from __future__ import annotations

import base64
import hashlib

import pytest

from devtools.apigw import http_event
from oauth.http import HttpRequest
from oauth.verification import RequestVerifier, VerificationError, received_url, request_hash
from sandbox.signing import VerificationSigner

ORIGIN = "https://AbC123.execute-api.us-east-1.amazonaws.com"
INSTALLATION = "amzn1.bwp.installation.vectors"


@pytest.fixture(scope="module")
def signer() -> VerificationSigner:
    return VerificationSigner()


@pytest.fixture(scope="module")
def verifier(signer: VerificationSigner) -> RequestVerifier:
    return RequestVerifier(signer.public_key_pem)


def _verify(verifier: RequestVerifier, event: dict[str, object], base_url: str = ORIGIN) -> str:
    return verifier.verify(HttpRequest.from_event(event), base_url).installation_id


@pytest.mark.parametrize(
    "raw_query,expected_suffix",
    [
        ("", ""),
        ("verification-token=abc", ""),
        ("a=1&verification-token=abc", "?a=1"),
        ("a=1&verification-token=abc&b=2", "?a=1"),  # everything from the token on is dropped
        ("b=2&a=1&verification-token=x", "?b=2&a=1"),  # order kept as received
        ("x-verification-token=1&a=2", "?x-verification-token=1&a=2"),  # not the parameter itself
        ("state=a%2Fb%3D&code=c+d&verification-token=t", "?state=a%2Fb%3D&code=c+d"),  # never re-encoded
    ],
)
def test_received_url_cuts_before_the_token(raw_query: str, expected_suffix: str) -> None:
    assert received_url(ORIGIN, "/install", raw_query) == f"{ORIGIN}/install{expected_suffix}"


def test_request_hash_matches_the_documented_formula() -> None:
    url, body = f"{ORIGIN}/uninstall", b'{"installationId":"x"}'
    body_hash = hashlib.sha256(body).hexdigest()
    assert request_hash(url, body) == hashlib.sha256((url + body_hash).encode()).hexdigest()
    assert request_hash(url, b"") == hashlib.sha256(url.encode()).hexdigest()


@pytest.mark.parametrize(
    "query",
    ["code=abc&state=xyz", "state=xyz&code=abc", "state=a%2Fb%2Bc%3D%3D&code=%C3%A9t%C3%A9+x", "code=a&code=b&state=s"],
)
def test_query_order_and_encoding_are_hashed_as_received(
    signer: VerificationSigner, verifier: RequestVerifier, query: str
) -> None:
    url = signer.sign_url(f"{ORIGIN}/install?{query}", INSTALLATION)
    assert _verify(verifier, http_event("GET", url)) == INSTALLATION


def test_a_reordered_query_no_longer_matches(signer: VerificationSigner, verifier: RequestVerifier) -> None:
    signed = signer.sign_url(f"{ORIGIN}/install?code=abc&state=xyz", INSTALLATION)
    token = signed.split("verification-token=")[1]
    with pytest.raises(VerificationError) as refused:
        _verify(verifier, http_event("GET", f"{ORIGIN}/install?state=xyz&code=abc&verification-token={token}"))
    assert refused.value.reason == "request_hash_mismatch"


def test_host_case_matters(signer: VerificationSigner, verifier: RequestVerifier) -> None:
    # the original lower-cased its host because capitals broke the check: we hash what was received
    url = signer.sign_url(f"{ORIGIN}/settings", INSTALLATION)
    assert _verify(verifier, http_event("GET", url)) == INSTALLATION
    with pytest.raises(VerificationError):
        _verify(verifier, http_event("GET", url), base_url=ORIGIN.lower())


def test_token_in_the_header(signer: VerificationSigner, verifier: RequestVerifier) -> None:
    url = f"{ORIGIN}/settings?tab=general"
    token = signer.sign(url, installation_id=INSTALLATION)
    event = http_event("GET", url, headers={"verification-token": token})
    assert _verify(verifier, event) == INSTALLATION


def test_token_in_the_header_with_a_body(signer: VerificationSigner, verifier: RequestVerifier) -> None:
    url, body = f"{ORIGIN}/uninstall", b'{"reason":"bye"}'
    token = signer.sign(url, body, installation_id=INSTALLATION)
    assert _verify(verifier, http_event("POST", url, body=body, headers={"Verification-Token": token})) == INSTALLATION


@pytest.mark.parametrize("body", [b'{"reason":"bye","emoji":"\xe2\x9c\x93"}', bytes(range(256))])
def test_base64_body_is_decoded_before_hashing(
    signer: VerificationSigner, verifier: RequestVerifier, body: bytes
) -> None:
    url = signer.sign_url(f"{ORIGIN}/uninstall", INSTALLATION, body=body)
    event = http_event("POST", url, body=body, base64_body=True)
    assert event["isBase64Encoded"] is True and event["body"] == base64.b64encode(body).decode()
    assert _verify(verifier, event) == INSTALLATION


def test_json_body_is_hashed_raw_not_reserialised(signer: VerificationSigner, verifier: RequestVerifier) -> None:
    body = b'{ "b": 1,\n  "a": 2 }'
    url = signer.sign_url(f"{ORIGIN}/uninstall", INSTALLATION, body=body)
    assert _verify(verifier, http_event("POST", url, body=body)) == INSTALLATION
    with pytest.raises(VerificationError):
        _verify(verifier, http_event("POST", url, body=b'{"b":1,"a":2}'))


def test_custom_domain(signer: VerificationSigner, verifier: RequestVerifier) -> None:
    # behind a custom domain the request's domainName is the custom host; a configured base wins
    custom = "https://apps.partner.example"
    url = signer.sign_url(f"{custom}/settings", INSTALLATION)
    event = http_event("GET", url.replace(custom, ORIGIN))
    assert _verify(verifier, event, base_url=custom) == INSTALLATION
    with pytest.raises(VerificationError):
        _verify(verifier, event, base_url=ORIGIN)


def test_first_token_parameter_wins_over_a_header(signer: VerificationSigner, verifier: RequestVerifier) -> None:
    url = signer.sign_url(f"{ORIGIN}/settings", INSTALLATION)
    event = http_event("GET", url, headers={"verification-token": "garbage"})
    assert _verify(verifier, event) == INSTALLATION
