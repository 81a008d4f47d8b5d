"""Health, metrics and (from issue 7) SLA rules and incidents."""
