"""Where the monthly report's figures come from, one small module per source.

Each source answers for one month with plain JSON-ready data and names the query it ran
(``Sourced.queries``), so every figure in a report can be traced back to its source:

- ``prometheus``: KPIs and service level inside service hours (HTTP API, PromQL);
- ``database``: registrations, unique users (per tenant schema), inquiries, incidents, releases,
  municipalities (control schema);
- ``iam``: IAM credential report and roles with last use;
- ``cloudtrail``: console logins, IAM changes and resources created, from the archive bucket;
- ``config_rules``: AWS Config compliance (current, per rule) and its history from the archive;
- ``securityhub``: Security Hub findings;
- ``costs``: Cost Explorer by the cost-allocation tag, shared costs apportioned by usage.

The interfaces are the functions' signatures; tests and development point them at real local
services (Prometheus, PostgreSQL, the moto stand-in) or at botocore's Stubber for what moto lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ReportSourceError(RuntimeError):
    """A source could not answer; the message (Japanese) names the source and what failed."""


@dataclass
class Sourced:
    """A source's answer and the queries behind it (``{"id", "source", "query"}`` each)."""

    data: Any
    queries: list[dict[str, str]] = field(default_factory=list)
