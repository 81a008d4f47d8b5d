"""Configuration: a small TOML file and/or environment variables (the environment wins).

    # card-agent.toml
    service_url  = "https://madoguchi.example.lg.jp"
    tenant       = "gobo"
    device_token = "..."                 # issued by the tenant administrator
    reader       = "Caora"               # optional: exact name, or a part of exactly one name
    ca_file      = "C:/madoguchi/ca.pem" # optional: a private CA (LGWAN / closed networks)

Environment: MADOGUCHI_CARD_AGENT_SERVICE_URL, _TENANT, _DEVICE_TOKEN, _READER, _CA_FILE, and
MADOGUCHI_CARD_AGENT_CONFIG for the file's path. Default path: ``%APPDATA%\\Madoguchi\\card-agent.toml``
on Windows, ``~/.config/madoguchi/card-agent.toml`` elsewhere.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError

ENV_PREFIX = "MADOGUCHI_CARD_AGENT_"
KEYS = ("service_url", "tenant", "device_token", "reader", "ca_file")
TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class AgentConfig:
    service_url: str
    tenant: str
    device_token: str
    reader: str | None = None
    ca_file: str | None = None

    def __repr__(self) -> str:  # the token stays out of logs and tracebacks
        return (
            f"AgentConfig(service_url={self.service_url!r}, tenant={self.tenant!r}, "
            f"device_token=<redacted>, reader={self.reader!r}, ca_file={self.ca_file!r})"
        )


def default_path(env: Mapping[str, str]) -> Path:
    if sys.platform == "win32" and env.get("APPDATA"):
        return Path(env["APPDATA"]) / "Madoguchi" / "card-agent.toml"
    return Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "madoguchi" / "card-agent.toml"


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> AgentConfig:
    env = os.environ if env is None else env
    explicit = path is not None or bool(env.get(ENV_PREFIX + "CONFIG"))
    file_path = Path(path or env.get(ENV_PREFIX + "CONFIG") or default_path(env))
    values: dict[str, str] = {}
    if file_path.is_file():
        values.update(_read_file(file_path))
    elif explicit:
        raise ConfigError(f"設定ファイル {file_path} がありません")
    for key in KEYS:
        if env.get(ENV_PREFIX + key.upper()):
            values[key] = env[ENV_PREFIX + key.upper()]
    return _validate(values, file_path)


def _read_file(path: Path) -> dict[str, str]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} を読めません ({exc})") from None
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise ConfigError(f"{path}: 不明な項目 {', '.join(unknown)}")
    out: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, str):
            raise ConfigError(f"{path}: {key} は文字列で指定してください")
        out[key] = value
    if "device_token" in out and os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} はデバイストークンを含むため、所有者以外が読めないようにしてください (chmod 600)"
        )
    return out


def _validate(values: dict[str, str], source: Path) -> AgentConfig:
    missing = [k for k in ("service_url", "tenant", "device_token") if not values.get(k, "").strip()]
    if missing:
        names = ", ".join(missing)
        raise ConfigError(f"{names} が未設定です（{source} または環境変数 {ENV_PREFIX}…）")
    url = values["service_url"].strip()
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"service_url が URL ではありません: {url}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError("service_url は https にしてください（http はこの PC 内の試験用サーバに限ります）")
    tenant = values["tenant"].strip()
    if not TENANT_RE.match(tenant):
        raise ConfigError(f"tenant の形式が正しくありません: {tenant}")
    return AgentConfig(
        service_url=url,
        tenant=tenant,
        device_token=values["device_token"].strip(),
        reader=values.get("reader", "").strip() or None,
        ca_file=values.get("ca_file", "").strip() or None,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
