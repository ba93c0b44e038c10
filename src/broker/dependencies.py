"""The token broker's collaborators: only the shared ones (the installation store, the token
service and its lease, the Buy with Prime client)."""

from __future__ import annotations

from shared.wiring import SharedDependencies


class Dependencies(SharedDependencies):
    pass
