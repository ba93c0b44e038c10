"""The sandbox's consent page (what a merchant sees at the authorize URL)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

__all__ = ["consent_page"]

_STYLE = (
    "body{font-family:sans-serif;max-width:32rem;margin:3rem auto;color:#0f1111}"
    "label{display:block;margin:.8rem 0 .2rem}input[type=text]{width:100%;padding:.4rem}"
    "button{margin:1rem .5rem 0 0;padding:.5rem 1.2rem}#approve{background:#ffd814}"
)


def consent_page(params: Mapping[str, str], hidden: tuple[str, ...], installation_id: str, store_name: str) -> str:
    """HTML with a form POSTing back to the authorize path: hidden OAuth params, two editable
    fields (``installation_id``, ``store_name``) and Approve / Deny buttons."""
    hidden_inputs = "\n".join(
        f'    <input type="hidden" name="{escape(name)}" value="{escape(params[name])}">'
        for name in hidden
        if name in params
    )
    client = escape(params.get("client_id", ""))
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Buy with Prime sandbox: authorize app</title>
  <style>{_STYLE}</style>
</head>
<body>
  <h1>Authorize app</h1>
  <p>The app <code id="client-id">{client}</code> asks to be installed on your Buy with Prime
  store.</p>
  <form method="post" action="/marketplace/authorize" id="consent">
{hidden_inputs}
    <label for="installation_id">Installation ID</label>
    <input type="text" id="installation_id" name="installation_id"
           value="{escape(installation_id)}" required>
    <label for="store_name">Store name</label>
    <input type="text" id="store_name" name="store_name" value="{escape(store_name)}">
    <button type="submit" id="approve" name="action" value="approve">Approve</button>
    <button type="submit" id="deny" name="action" value="deny">Deny</button>
  </form>
</body>
</html>
"""
