"""Front-linkage adapters as plugins: where a tenant's core system drops its extracts.

``adapter_for(config, tenant)`` returns the adapter registered for ``config.kind`` with
``@register``; importing this package registers the built-in kinds (``s3``, ``local``, ``http``).
Polling, scheduling and the hand-off to the importer live in ``app.linkage.adapters.polling``.
"""

from __future__ import annotations

from app.linkage.adapters import http, local, s3  # noqa: F401  (register the built-in kinds)
from app.linkage.adapters.base import (
    AdapterError,
    AnyAdapterConfig,
    Check,
    LinkageAdapter,
    RemoteObject,
    adapter_for,
    register,
    registered_kinds,
)

__all__ = [
    "AdapterError",
    "AnyAdapterConfig",
    "Check",
    "LinkageAdapter",
    "RemoteObject",
    "adapter_for",
    "register",
    "registered_kinds",
]
