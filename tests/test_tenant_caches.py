"""Per-process tenant caches are bounded: a worker serving every municipality keeps only the most
recently used parsed configurations and compiled catalogues (``tenant_cache_size``), and a tenant
whose entries were dropped is served from the database again, never from another tenant's. The
configurations leave out the catalogue and the forms: the service reads those per version from the
tenant's schema."""

from __future__ import annotations

import datetime as dt

import pytest
from cachetools import LRUCache
from sqlalchemy import select

from app.guidance import service as guidance
from app.guidance.models import CatalogueVersion
from app.tenancy.service import TenantRecord, registry
from tests.conftest import tenant_session

CITIES = ("osaka", "gobo", "yamaguchi")


def test_three_cities_through_caches_of_two(
    provisioned: dict[str, TenantRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "_configs", LRUCache(maxsize=2))
    monkeypatch.setattr(guidance, "_compiled", LRUCache(maxsize=2))
    for _ in range(2):  # the second round finds the first city dropped
        for city in CITIES:
            record = registry.get(city)
            assert record is not None
            config = registry.config(record)
            assert config.tenant.id == city  # its own, parsed again if dropped
            assert (config.catalogue, config.forms) == (None, [])  # read per version from its schema
            with tenant_session(city) as session:
                active = guidance.active_catalogue(session, dt.date(2026, 11, 1))
                stored = session.scalar(
                    select(CatalogueVersion.content_hash).where(CatalogueVersion.id == active.id)
                )
                session.rollback()
            assert active.compiled.content_hash == stored
            assert len(registry._configs or ()) <= 2
            assert len(guidance._compiled or ()) <= 2
    first = registry.get(CITIES[0])
    assert first is not None
    assert registry.cached_config(first) is None  # dropped, the least recently used
