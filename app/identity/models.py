"""Municipal staff accounts (職員), one table per tenant schema."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import TenantBase, id_column


class StaffUser(TenantBase):
    __tablename__ = "staff_users"

    id: Mapped[int] = id_column()
    login: Mapped[str] = mapped_column(unique=True)
    display_name: Mapped[str]
    password_hash: Mapped[str | None]  # None: signs in through the city's identity provider only
    is_active: Mapped[bool] = mapped_column(server_default="true")
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    last_login_at: Mapped[dt.datetime | None]
