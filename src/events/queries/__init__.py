"""GraphQL documents, kept as .graphql files and read once."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent


@cache
def load(name: str) -> str:
    return (_HERE / f"{name}.graphql").read_text(encoding="utf-8")


def order_query(api_version: str | None) -> str:
    """`deliveryInformation` was renamed `packageInformation` in API version 2024-11-01."""
    if api_version and api_version < "2024-11-01":
        return load("order_before_2024_11_01")
    return load("order")
