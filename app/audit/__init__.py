"""Operation log (操作ログ)."""

from app.audit.service import Actor, RecordedEntry, actor_var, record

__all__ = ["Actor", "RecordedEntry", "actor_var", "record"]
