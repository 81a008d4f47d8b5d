"""The adapter contract and the kind registry.

An adapter knows one place where a core system drops extracts (a bucket prefix, a directory, a
URL). It can say whether its configuration works (``check_config``), what is there now
(``list_objects``) and copy one object to a local file (``fetch``). It knows nothing about the
database: which objects were already taken is the poller's business (``polling.py``), so a new kind
of storage is one class with ``@register("kind")``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar

from app.linkage.config import AdapterBase, HttpAdapter, LocalAdapter, S3Adapter
from app.tenancy.service import TenantRecord

AnyAdapterConfig = S3Adapter | LocalAdapter | HttpAdapter
ConfigT = TypeVar("ConfigT", bound=AdapterBase)
A = TypeVar("A", bound="LinkageAdapter[Any]")

CHUNK_BYTES = 1024 * 1024  # streamed copies hold at most about this much of an object in memory


class AdapterError(Exception):
    """An operational failure (unreachable, refused, missing); the message is Japanese."""


@dataclass(frozen=True)
class Check:
    """One line of ``check_config``: what was checked, whether it passed, and why (Japanese)."""

    name: str  # settings, endpoint, credentials, bucket, prefix, directory, url
    ok: bool
    message: str


@dataclass(frozen=True)
class RemoteObject:
    """One version of one object in remote storage.

    ``key`` + ``etag`` identify the version: a file replaced under the same name is a new object.
    """

    key: str  # S3 key, file name in the directory, or URL
    name: str  # base name: matched against the adapter's pattern, passed on as the file name
    etag: str  # S3 ETag, mtime+size, HTTP validator or content hash
    size: int | None
    last_modified: dt.datetime | None
    ref: str  # for batch records: s3://bucket/key, an absolute path, a URL


class LinkageAdapter(ABC, Generic[ConfigT]):
    """Base class of every adapter kind. Use as a context manager so connections are closed."""

    kind: ClassVar[str]

    def __init__(self, config: ConfigT, tenant: TenantRecord) -> None:
        self.config = config
        self.tenant = tenant
        self._pattern = re.compile(config.pattern)

    @property
    def name(self) -> str:
        return self.config.name

    def matches(self, name: str) -> bool:
        """Whether a base name is one of this adapter's files (``re.search``, like layout modes)."""
        return self._pattern.search(name) is not None

    @abstractmethod
    def check_config(self) -> list[Check]:
        """Check settings, connectivity, credentials and the location, stopping at the first failure."""

    @abstractmethod
    def list_objects(self) -> list[RemoteObject]:
        """The objects there now whose base name matches the pattern. Raises ``AdapterError``."""

    @abstractmethod
    def fetch(self, obj: RemoteObject, dest_dir: Path) -> Path:
        """Stream ``obj`` into a new file in ``dest_dir``; fail if it is no longer that version."""

    def close(self) -> None:
        """Release connections (override where a kind holds any)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _spool(self, chunks: Iterable[bytes], obj: RemoteObject, dest_dir: Path) -> Path:
        """Write ``chunks`` to a new file in ``dest_dir``; a partial file never survives an error."""
        safe = re.sub(r"[^\w.-]", "_", obj.name)[-80:] or "object"
        fd, raw = tempfile.mkstemp(dir=dest_dir, prefix=f"{self.name}-", suffix=f"-{safe}")
        path = Path(raw)
        written = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    written += len(chunk)
            if obj.size is not None and written != obj.size:
                raise AdapterError(
                    f"「{obj.name}」の取得が途中で終わりました（{written:,} / {obj.size:,} バイト）"
                )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path


_kinds: dict[str, type[LinkageAdapter[Any]]] = {}


def register(kind: str) -> Callable[[type[A]], type[A]]:
    """Class decorator: ``@register("s3")`` makes the class the adapter for ``kind: s3``."""

    def add(cls: type[A]) -> type[A]:
        existing = _kinds.get(kind)
        if existing is not None and existing is not cls:
            raise ValueError(f"adapter kind {kind!r} is already registered by {existing.__qualname__}")
        cls.kind = kind
        _kinds[kind] = cls
        return cls

    return add


def registered_kinds() -> list[str]:
    return sorted(_kinds)


def adapter_for(config: AnyAdapterConfig, tenant: TenantRecord) -> LinkageAdapter[Any]:
    """The adapter for one configured entry of a tenant's ``linkage.yaml``."""
    cls = _kinds.get(config.kind)
    if cls is None:
        raise LookupError(f"no adapter registered for kind {config.kind!r} (known: {registered_kinds()})")
    return cls(config, tenant)
