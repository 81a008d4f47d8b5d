"""Declarative bases: tenant tables carry no schema (mapped per session through
``schema_translate_map={None: <tenant schema>}``); control tables live in ``control``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, MetaData, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TYPE_MAP: dict[Any, Any] = {
    int: BigInteger,
    str: Text,
    dt.datetime: DateTime(timezone=True),
}


class TenantBase(DeclarativeBase):
    """Tables that exist once per tenant schema. No native enums, bigint ids, no cross-schema FKs."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = TYPE_MAP


class ControlBase(DeclarativeBase):
    """Tables of the shared ``control`` schema (tenant registry, provider operations)."""

    metadata = MetaData(schema="control", naming_convention=NAMING_CONVENTION)
    type_annotation_map = TYPE_MAP


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def id_column() -> Mapped[int]:
    """bigint identity primary key (bigint everywhere keeps Citus schema sharding open)."""
    return mapped_column(BigInteger, Identity(), primary_key=True)


def created_at_column() -> Mapped[dt.datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def read_only(table_args: dict[str, Any] | None = None) -> dict[str, Any]:
    """``__table_args__`` for tables the runtime role may only SELECT from.

    They are written by the schema owner: at provisioning, or by a SECURITY DEFINER function.
    """
    args = dict(table_args or {})
    args.setdefault("info", {})["read_only"] = True
    return args
