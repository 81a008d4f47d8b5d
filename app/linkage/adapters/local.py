"""``kind: local``: files directly in a directory (carried in by hand, or a mounted share).

A file's identity is its modification time (ns) and size, so a file replaced under the same name is
a new object. Sub-directories and hidden files (``.name``) are never taken: writers put files in
progress there and rename them into place when complete. ``fetch`` copies the file and fails if it
changed while being copied, so a half-written file is never imported under the identity listed.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

from app.linkage.adapters.base import CHUNK_BYTES, AdapterError, Check, LinkageAdapter, RemoteObject, register
from app.linkage.config import LocalAdapter


def _identity(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns}-{st.st_size}"


@register("local")
class LocalLinkageAdapter(LinkageAdapter[LocalAdapter]):
    @property
    def directory(self) -> Path:
        return Path(self.config.directory).absolute()

    def check_config(self) -> list[Check]:
        directory = self.directory
        checks = [Check("settings", True, f"設定は有効です（ディレクトリ: {directory}）")]
        try:
            files = self._files()
        except AdapterError as exc:
            return [*checks, Check("directory", False, str(exc))]
        checks.append(Check("directory", True, f"ディレクトリ「{directory}」を読み取れます"))
        matching = sorted(name for name, _ in files if self.matches(name))
        if not matching:
            return [
                *checks,
                Check(
                    "files",
                    True,
                    f"ディレクトリ「{directory}」にパターン「{self.config.pattern}」に一致するファイルは"
                    f"まだありません（読み取りは可能です）",
                ),
            ]
        if not os.access(directory / matching[0], os.R_OK):
            return [*checks, Check("files", False, f"「{matching[0]}」を読み取る権限がありません")]
        return [
            *checks,
            Check(
                "files",
                True,
                f"パターンに一致するファイル {len(matching)} 件を読み取れます（例: {matching[0]}）",
            ),
        ]

    def list_objects(self) -> list[RemoteObject]:
        return [
            RemoteObject(
                key=name,
                name=name,
                etag=_identity(st),
                size=st.st_size,
                last_modified=dt.datetime.fromtimestamp(st.st_mtime, dt.UTC),
                ref=str(self.directory / name),
            )
            for name, st in self._files()
            if self.matches(name)
        ]

    def fetch(self, obj: RemoteObject, dest_dir: Path) -> Path:
        source = self.directory / obj.key
        try:
            handle = source.open("rb")
        except FileNotFoundError as exc:
            raise AdapterError(f"ファイル「{source}」は一覧の取得後に削除されました") from exc
        except OSError as exc:
            raise AdapterError(f"ファイル「{source}」を開けません（{exc.strerror}）") from exc
        with handle:

            def chunks() -> Iterator[bytes]:
                # Checked on the open descriptor: a rename over the name cannot fool it.
                if _identity(os.fstat(handle.fileno())) != obj.etag:
                    raise AdapterError(f"ファイル「{source}」は一覧の取得後に変更されました")
                while chunk := handle.read(CHUNK_BYTES):
                    yield chunk
                if _identity(os.fstat(handle.fileno())) != obj.etag:
                    raise AdapterError(
                        f"ファイル「{source}」はコピー中に変更されました（次回の取得で取り込みます）"
                    )

            return self._spool(chunks(), obj, dest_dir)

    def _files(self) -> list[tuple[str, os.stat_result]]:
        directory = self.directory
        found: list[tuple[str, os.stat_result]] = []
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    try:
                        if entry.is_file():
                            found.append((entry.name, entry.stat()))
                    except FileNotFoundError:
                        continue  # removed while listing
        except FileNotFoundError as exc:
            raise AdapterError(f"ディレクトリ「{directory}」が見つかりません") from exc
        except NotADirectoryError as exc:
            raise AdapterError(f"「{directory}」はディレクトリではありません") from exc
        except PermissionError as exc:
            raise AdapterError(f"ディレクトリ「{directory}」を読み取る権限がありません") from exc
        except OSError as exc:
            raise AdapterError(f"ディレクトリ「{directory}」を読み取れません（{exc.strerror}）") from exc
        return found
