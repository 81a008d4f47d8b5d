"""Bring up pcscd with vsmartcard's vpcd driver for the end-to-end test.

pcscd's socket path (/run/pcscd/pcscd.comm) is compiled in: one per machine. To not disturb a
pcscd that is already running (a developer's reader, another checkout's test), the test starts
its own pcscd in a private mount namespace (``unshare --mount``, root) where a temporary folder
is bind-mounted on /run/pcscd. The socket then lives in that folder, and clients reach it through
``PCSCLITE_CSOCK_NAME`` (libpcsclite reads it once per process, so the agent runs as a
subprocess). vpcd listens on a free TCP port chosen here, given as CHANNELID in a private reader
configuration, so parallel runs do not collide either.

Fallbacks, in order: no unshare → start pcscd normally if none is running; a pcscd already
running → use it if it has Debian's "Virtual PCD" reader (port 0x8C7B from
/etc/reader.conf.d/vpcd); else the test is skipped, saying why.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
SYSTEM_SOCKET = Path("/run/pcscd/pcscd.comm")
DEBIAN_VPCD_PORT = 0x8C7B
READER_SLOT0 = "Virtual PCD 00 00"
AGENT_DIR = Path(__file__).resolve().parents[2] / "agent"


class CannotStart(Exception):
    """pcscd cannot be brought up here; the message is the skip reason."""


@dataclass
class Pcscd:
    mode: str  # "private namespace" | "started" | "already running"
    port: int  # vpcd's TCP port for slot 0 (the card emulator connects here)
    socket_path: Path | None  # None: the default path
    startup_seconds: float
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    notes: list[str] = field(default_factory=list)

    def client_env(self) -> dict[str, str]:
        env = {
            "PYTHONPATH": os.pathsep.join([str(AGENT_DIR), os.environ.get("PYTHONPATH", "")]).rstrip(
                os.pathsep
            )
        }
        if self.socket_path is not None:
            env["PCSCLITE_CSOCK_NAME"] = str(self.socket_path)
        return env

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def list_readers(env_extra: dict[str, str], timeout: float = 10.0) -> list[str]:
    """Ask PC/SC for readers in a fresh process (the socket path is read once per process)."""
    env = {**os.environ, **env_extra}
    done = subprocess.run(
        [sys.executable, "-m", "madoguchi_card_agent", "--list-readers"],
        env=env,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return [line.strip() for line in done.stdout.decode("utf-8", "replace").splitlines() if line.strip()]


def _free_port_pair() -> int:
    """A port p with p and p+1 free (vpcd opens one port per slot, two slots)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("0.0.0.0", 0))  # noqa: S104 - vpcd itself binds INADDR_ANY
            port = s.getsockname()[1]
        if port >= 65535:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("0.0.0.0", port))  # noqa: S104
                b.bind(("0.0.0.0", port + 1))  # noqa: S104
        except OSError:
            continue
        return port
    raise CannotStart("no free TCP port pair for vpcd")


def _socket_alive(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def _write_conf(folder: Path, port: int) -> Path:
    conf = folder / "reader.conf"
    conf.write_text(
        'FRIENDLYNAME "Virtual PCD"\n'
        f"DEVICENAME   /dev/null:0x{port:04X}\n"
        f"LIBPATH      {VPCD_DRIVER}\n"
        f"CHANNELID    0x{port:04X}\n"
    )
    return conf


def _wait_ready(pcscd: Pcscd, deadline: float) -> None:
    env = pcscd.client_env()
    while time.monotonic() < deadline:
        if pcscd.proc is not None and pcscd.proc.poll() is not None:
            log = pcscd.log_path.read_text(errors="replace") if pcscd.log_path else ""
            raise CannotStart(
                f"pcscd ({pcscd.mode}) exited with {pcscd.proc.returncode}: {log.strip()[-500:]}"
            )
        sock = pcscd.socket_path or SYSTEM_SOCKET
        if sock.exists() and READER_SLOT0 in list_readers(env):
            return
        time.sleep(0.1)
    pcscd.stop()
    raise CannotStart(f"pcscd ({pcscd.mode}) did not show {READER_SLOT0!r} in time")


def start(work: Path, timeout: float = 20.0) -> Pcscd:
    pcscd_bin = shutil.which("pcscd") or "/usr/sbin/pcscd"
    if not Path(pcscd_bin).exists() or not VPCD_DRIVER.exists():
        raise CannotStart("pcscd or vsmartcard-vpcd is not installed (scripts/setup.sh installs both)")
    begin = time.monotonic()
    deadline = begin + timeout
    port = _free_port_pair()
    conf = _write_conf(work, port)
    log_path = work / "pcscd.log"
    notes: list[str] = []

    unshare = shutil.which("unshare")
    if unshare and os.geteuid() == 0:
        run_dir = work / "run"
        run_dir.mkdir()
        script = 'mkdir -p /run/pcscd && mount --bind "$1" /run/pcscd && exec "$2" --foreground --error --config "$3"'
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    unshare,
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    script,
                    "sh",
                    str(run_dir),
                    pcscd_bin,
                    str(conf),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        pcscd = Pcscd("private namespace", port, run_dir / "pcscd.comm", 0.0, proc, log_path)
        try:
            _wait_ready(pcscd, deadline)
            pcscd.startup_seconds = time.monotonic() - begin
            return pcscd
        except CannotStart as exc:
            notes.append(str(exc))
            pcscd.stop()

    if not _socket_alive(SYSTEM_SOCKET):
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [pcscd_bin, "--foreground", "--error", "--config", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        pcscd = Pcscd("started", port, None, 0.0, proc, log_path, notes)
        _wait_ready(pcscd, deadline)  # raises CannotStart with pcscd's own words
        pcscd.startup_seconds = time.monotonic() - begin
        return pcscd

    if READER_SLOT0 in list_readers({}):
        return Pcscd("already running", DEBIAN_VPCD_PORT, None, time.monotonic() - begin, notes=notes)
    raise CannotStart(
        "a pcscd is already running on this machine without the vpcd reader, and no private mount "
        f"namespace could be made for our own ({'; '.join(notes) or 'unshare needs root'})"
    )
