"""A merchant's browser without a browser, against a LocalStack (devtools.merchant does the work:
Launch, the consent page's form submitted with Approve, Install with the app's cookie carried by
hand, since requests never sends a `Secure` cookie over http)."""

from __future__ import annotations

from devtools.local_stack import LocalStack
from devtools.merchant import Installed, Merchant

__all__ = ["Installed", "install"]


def install(stack: LocalStack, installation_id: str) -> Installed:
    merchant = Merchant(stack.launch_url)
    try:
        installed = merchant.install(installation_id)
    finally:
        merchant.close()
    assert installed.install_url == stack.install_url
    return installed
