"""Real stand-ins for the linkage tests: buckets on the moto server, an HTTP server with bearer auth.

No fakes of boto3 or httpx: the adapters talk to a real S3 endpoint (the services' moto server) and
a real ``http.server`` on loopback.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from app.audit.service import Actor
from app.db.session import session_scope
from app.jobs import JobContext
from app.linkage.models import ImportBatch
from app.tenancy.service import registry

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REGION = "ap-northeast-1"


def s3_client() -> S3Client:
    return boto3.session.Session().client(
        "s3", endpoint_url=os.environ["MADOGUCHI_S3_ENDPOINT_URL"], region_name=REGION
    )


@dataclass
class Bucket:
    client: S3Client
    name: str

    def put(self, key: str, body: bytes) -> str:
        return self.client.put_object(Bucket=self.name, Key=key, Body=body)["ETag"].strip('"')

    def delete(self) -> None:
        listed = self.client.list_objects_v2(Bucket=self.name)
        for item in listed.get("Contents", []):
            self.client.delete_object(Bucket=self.name, Key=item["Key"])
        self.client.delete_bucket(Bucket=self.name)


@contextmanager
def bucket(name: str | None = None) -> Iterator[Bucket]:
    """A fresh bucket on the moto server, emptied and removed afterwards."""
    client = s3_client()
    made = Bucket(client, name or f"test-{uuid.uuid4().hex[:16]}")
    try:
        client.create_bucket(Bucket=made.name, CreateBucketConfiguration={"LocationConstraint": REGION})
    except client.exceptions.BucketAlreadyOwnedByYou:  # left over by an interrupted run
        made.delete()
        client.create_bucket(Bucket=made.name, CreateBucketConfiguration={"LocationConstraint": REGION})
    try:
        yield made
    finally:
        made.delete()
        client.close()


def free_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ExtractServer:
    """``GET /extract`` answers with ``body`` and ``headers`` to ``Authorization: Bearer <token>``."""

    token: str = "yamaguchi-test-token"
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    gets: int = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/extract"

    def start(self) -> None:
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                served.gets += 1
                if self.headers.get("Authorization") != f"Bearer {served.token}":
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", "Bearer")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path != "/extract":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = memoryview(served.body)
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(body)))
                for name, value in served.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    for start in range(0, len(body), 256 * 1024):
                        self.wfile.write(body[start : start + 256 * 1024])
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client read only the headers

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


@contextmanager
def extract_server() -> Iterator[ExtractServer]:
    server = ExtractServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def job_context(tenant: str) -> Iterator[JobContext]:
    """What ``@tenant_job`` gives a job: the tenant, one session bound to it, a system actor."""
    record = registry.get(tenant)
    assert record is not None
    with session_scope(record.binding) as session:
        yield JobContext(record, session, Actor("system", "test:poller"))


def record_import(
    ctx: JobContext, path: Path, /, *, file_name: str, kind: str, source: str, source_ref: str
) -> int:
    """A real importer stand-in: records an ``ImportBatch`` in the job's tenant and returns its id."""
    data = path.read_bytes()
    batch = ImportBatch(
        kind=kind,
        mode="full",
        layout="standard",
        policy="reject_all",
        source=source,
        source_ref=source_ref,
        file_name=file_name,
        content_sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        status="applied",
        created_by=ctx.actor.id,
    )
    ctx.session.add(batch)
    ctx.session.flush()
    return batch.id
