"""Operation log (操作ログ)."""

from app.audit.service import Actor, actor_var, record

__all__ = ["Actor", "actor_var", "record"]
