"""The sweep's collaborators: only the shared ones (the installation store and the token service)."""

from __future__ import annotations

from shared.wiring import SharedDependencies


class Dependencies(SharedDependencies):
    pass
