"""Import every model module so both metadata trees are complete (migrations, grants, tests)."""

from __future__ import annotations

import app.audit.models
import app.counter.models
import app.forms.models
import app.guidance.models
import app.identity.models
import app.linkage.models
import app.observability.models
import app.reports.models
import app.residents.models
import app.tenancy.models  # noqa: F401
from app.db.base import ControlBase, TenantBase

control_metadata = ControlBase.metadata
tenant_metadata = TenantBase.metadata
