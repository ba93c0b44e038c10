"""Which committed table changes become events for the partner's code, and what they say.

The table's stream is the outbox: every write the functions commit is on it, in order per item, for
24 hours, so an event cannot be skipped by a crash between a write and a publish. This module turns
one stream record into at most one app event; `outbox.handler` publishes them.

    installation item (INSTALLATION#<id> / INSTALLATION)
        new, or re-installed (installed_at_ms changed)        InstallationCreated
        ... after needing re-authorisation                   InstallationReauthorized
        status -> uninstalled                                 InstallationUninstalled
        status -> needs_reauthorization                       InstallationNeedsReauthorization
        uninstalled tombstone deleted (the tenant's purge)   InstallationPurged
        (token refreshes, leases: nothing)
    snapshot version inserted (<KIND>S#<id>#<n> / <KIND>#<res>#v<version>)
        ORDER / INVENTORY_ITEM / PRODUCT                      OrderHydrated / InventoryItemHydrated / ProductHydrated
    event record turned processed, kept raw (a type no hydrator takes)
        PERSONAL_DATA_*_TASK_COMPLETED / _FAILED              PersonalDataTask
        any other type                                        PartnerEventReceived

Every event: `detail.schemaVersion` ("1"), `detail.installationId`, and `detail.eventId`, a stable
ID from the change itself (the same stream record always gives the same ID), for de-duplication:
delivery is at least once, so consumers drop IDs they have seen. Never a token: installation events
carry the status and times only. Schemas: docs/app-events/*.schema.json.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

SOURCE = "buy-with-prime.integration"
SCHEMA_VERSION = "1"
MAX_DETAIL_BYTES = 200_000  # PutEvents takes 256 KB per request; larger data is left out, flagged
HYDRATED = {"ORDER": "OrderHydrated", "INVENTORY_ITEM": "InventoryItemHydrated", "PRODUCT": "ProductHydrated"}


def _plain(image: dict[str, Any] | None) -> dict[str, Any]:
    """A stream image's attributes as plain values (S, N, BOOL, L of S); others left out."""
    plain: dict[str, Any] = {}
    for name, value in (image or {}).items():
        if "S" in value:
            plain[name] = value["S"]
        elif "N" in value:
            plain[name] = int(value["N"]) if value["N"].lstrip("-").isdigit() else float(value["N"])
        elif "BOOL" in value:
            plain[name] = value["BOOL"]
        elif "L" in value:
            plain[name] = [item.get("S") for item in value["L"]]
    return plain


def app_event(record: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(detail-type, detail) for one stream record, or None when it means nothing to the app."""
    change = record.get("dynamodb") or {}
    new, old = _plain(change.get("NewImage")), _plain(change.get("OldImage"))
    keys = _plain(change.get("Keys"))
    pk, sk = str(keys.get("pk", "")), str(keys.get("sk", ""))
    if pk.startswith("INSTALLATION#") and sk == "INSTALLATION":
        found = _installation_event(
            pk.removeprefix("INSTALLATION#"), old, new, change.get("ApproximateCreationDateTime")
        )
    elif record.get("eventName") == "INSERT" and new.get("kind") in HYDRATED and "#v" in sk:
        found = _hydrated(pk, new)
    elif sk in ("EVENT", "EVENT_KEY") and new.get("outcome") == "processed" and old.get("outcome") != "processed":
        found = _received(new)
    else:
        found = None
    if found is None:
        return None
    detail_type, detail = found
    detail = {"schemaVersion": SCHEMA_VERSION, "eventId": _stable_id(detail_type, pk, sk, new), **detail}
    return detail_type, _bounded(detail)


def _installation_event(
    installation_id: str, old: dict[str, Any], new: dict[str, Any], changed_at: Any = None
) -> tuple[str, dict[str, Any]] | None:
    if not new:
        if old.get("status") != "uninstalled":
            return None
        # the last step of the tenant's purge (shared/store/purge.py): delete your copies too
        purged_at = int(changed_at) if isinstance(changed_at, int | float) else None
        return "InstallationPurged", {"installationId": installation_id, "status": "purged", "purgedAt": purged_at}
    status, before = new.get("status"), old.get("status")
    reinstalled = new.get("installed_at_ms") != old.get("installed_at_ms") and status == "active"
    if reinstalled:
        kind = "InstallationReauthorized" if before == "needs_reauthorization" else "InstallationCreated"
    elif status == before:
        return None  # a refresh, a lease: nothing the app needs
    elif status == "uninstalled":
        kind = "InstallationUninstalled"
    elif status == "needs_reauthorization":
        kind = "InstallationNeedsReauthorization"
    elif status == "active" and before == "needs_reauthorization":
        kind = "InstallationReauthorized"
    else:
        return None
    detail = {
        "installationId": installation_id,
        "status": status,
        "installedAtMs": new.get("installed_at_ms"),
        "changedAt": new.get("uninstalled_at") or new.get("updated_at"),
    }
    if kind == "InstallationNeedsReauthorization":
        detail["reason"] = new.get("reauthorization_reason")
    return kind, detail


def _hydrated(pk: str, new: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    installation_id = pk.removeprefix(f"{new['kind']}S#").rpartition("#")[0]  # <KIND>S#<id>#<shard>
    try:
        data = json.loads(new.get("data") or "{}")
    except ValueError:
        data = None
    return HYDRATED[new["kind"]], {
        "installationId": installation_id,
        "resourceId": new.get("resource_id"),
        "version": new.get("version"),
        "fetchedAtMs": new.get("fetched_at"),
        "sourceEventId": new.get("event_id"),
        "data": data,
    }


def _received(new: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    raw = new.get("raw")
    if not raw:
        return None  # hydrated: its snapshot's event says it
    try:
        event = json.loads(raw)
    except ValueError:
        event = None
    if task := _personal_data_task(str(new.get("event_type") or "")):
        kind, outcome = task
        return "PersonalDataTask", {
            "installationId": new.get("installation_id"),
            "partnerEventId": new.get("event_id"),
            "eventType": new.get("event_type"),
            "task": kind,
            "outcome": outcome,
            "businessProductId": new.get("business_product_id"),
            "resources": new.get("resources") or [],
            "event": event,
        }
    return "PartnerEventReceived", {
        "installationId": new.get("installation_id"),
        "partnerEventId": new.get("event_id"),
        "eventType": new.get("event_type"),
        "receivedType": new.get("received_type"),
        "event": event,
    }


def _personal_data_task(event_type: str) -> tuple[str, str] | None:
    """("deletion" | "retrieval", "completed" | "failed") of a PERSONAL_DATA_* task event: Buy with
    Prime finished (or failed) a shopper's request; the partner's code must act on its own copies."""
    parts = event_type.split("_")
    if len(parts) != 5 or parts[:2] != ["PERSONAL", "DATA"] or parts[3] != "TASK":
        return None
    kind, outcome = parts[2].lower(), parts[4].lower()
    if kind not in ("deletion", "retrieval") or outcome not in ("completed", "failed"):
        return None
    return kind, outcome


def _stable_id(detail_type: str, pk: str, sk: str, new: dict[str, Any]) -> str:
    """The same change gives the same ID, whichever delivery of the stream record publishes it."""
    version = new.get("updated_at") if detail_type.startswith("Installation") else ""
    marker = f"{detail_type}|{pk}|{sk}|{new.get('installed_at_ms', '')}|{new.get('status', '')}|{version}"
    return hashlib.sha256(marker.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _bounded(detail: dict[str, Any]) -> dict[str, Any]:
    """Data too large for one PutEvents entry is left out (`dataOmitted`): read it from the store."""
    for name in ("data", "event"):
        if name in detail and len(json.dumps(detail).encode()) > MAX_DETAIL_BYTES:
            detail = {**detail, name: None, "dataOmitted": True}
    return detail
