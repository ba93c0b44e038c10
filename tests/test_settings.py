"""Configuration fails fast, naming the variable to fix."""

from __future__ import annotations

import pytest

from shared.errors import ConfigurationError
from shared.settings import PUBLISHED_VERIFICATION_KEY, load_settings

BASE = {
    "TABLE_NAME": "bwp-table",
    "CLIENT_CREDENTIALS_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bwp-client-AbCdEf",
}


def test_defaults_are_the_documented_endpoints_and_key() -> None:
    settings = load_settings(BASE)
    assert settings.bwp_authorize_url == "https://console.buywithprime.amazon.com/marketplace/authorize"
    assert settings.bwp_token_url == "https://api.buywithprime.amazon.com/token"
    assert settings.bwp_graphql_url == "https://api.buywithprime.amazon.com/graphql"
    assert settings.bwp_verification_public_key == PUBLISHED_VERIFICATION_KEY
    assert settings.public_base_url is None and settings.bwp_api_version is None
    assert settings.oauth_state_ttl_seconds == 600


def test_empty_optional_variables_mean_unset() -> None:
    settings = load_settings({**BASE, "PUBLIC_BASE_URL": "", "BWP_API_VERSION": " ", "POST_INSTALL_REDIRECT_URL": ""})
    assert settings.public_base_url is None and settings.bwp_api_version is None
    assert settings.post_install_redirect_url is None


@pytest.mark.parametrize(
    "name,value",
    [
        ("BWP_TOKEN_URL", "http://api.example.com/token"),
        ("BWP_GRAPHQL_URL", "not a url"),
        ("BWP_AUTHORIZE_URL", "ftp://console.example.com"),
        ("PUBLIC_BASE_URL", "https://apps.example.com/prefix"),
        ("BWP_API_VERSION", "latest"),
        ("OAUTH_STATE_TTL_SECONDS", "5"),
        ("OAUTH_STATE_TTL_SECONDS", "ten"),
        ("CLIENT_CREDENTIALS_SECRET_ARN", "my-secret"),
        ("BWP_VERIFICATION_PUBLIC_KEY", "not base64 !"),
        ("TABLE_NAME", "x"),
    ],
)
def test_invalid_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        load_settings({**BASE, name: value})
    assert name in str(error.value)


@pytest.mark.parametrize("missing", ["TABLE_NAME", "CLIENT_CREDENTIALS_SECRET_ARN"])
def test_missing_required_variables_are_named(missing: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        load_settings({k: v for k, v in BASE.items() if k != missing})
    assert missing in str(error.value)


def test_public_base_url_is_an_origin_without_trailing_slash() -> None:
    assert (
        load_settings({**BASE, "PUBLIC_BASE_URL": "https://apps.example.com/"}).public_base_url
        == "https://apps.example.com"
    )


def test_loopback_http_is_allowed_for_the_local_sandbox() -> None:
    settings = load_settings({**BASE, "BWP_TOKEN_URL": "http://127.0.0.1:8765/token"})
    assert settings.bwp_token_url == "http://127.0.0.1:8765/token"


@pytest.mark.parametrize(
    "form",
    [
        PUBLISHED_VERIFICATION_KEY,
        PUBLISHED_VERIFICATION_KEY.replace("\n", "\\n"),
        "".join(PUBLISHED_VERIFICATION_KEY.splitlines()[1:-1]),
    ],
)
def test_the_verification_key_may_be_given_in_several_forms(form: str) -> None:
    from oauth.verification import RequestVerifier

    settings = load_settings({**BASE, "BWP_VERIFICATION_PUBLIC_KEY": form})
    assert settings.bwp_verification_public_key == PUBLISHED_VERIFICATION_KEY
    RequestVerifier(settings.bwp_verification_public_key)  # loads as an EC P-256 key


def test_a_key_that_is_not_p256_is_a_configuration_error() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from oauth.verification import RequestVerifier

    p384 = (
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(ConfigurationError, match="BWP_VERIFICATION_PUBLIC_KEY"):
        RequestVerifier(p384)
