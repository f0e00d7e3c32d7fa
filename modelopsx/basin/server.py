"""A local Basin emulator: the S3 subset of Basin's `basin_s3` adapter, with Basin's semantics.

Path-style S3 over HTTP/1.1 (keep-alive) on a stdlib ThreadingHTTPServer. Semantics reproduced: buckets are
object stores named by t2 address or `0x<owner>.<alias>`; objects are immutable ("key exists" on re-put);
every object carries a BLAKE3 CID (returned as ETag and as `x-amz-meta-cid` on GET; HEAD has no user
metadata); listings take prefix and delimiter only, return at most `list_cap` entries, never paginate and come
in hash order; ranges; a size limit (413); deleting a missing key fails; read-only mode answers writes with
501 NotImplemented; SigV4 is checked when keys are set. Fault injection (500s, dropped connections,
truncated bodies, latency) serves reliability tests.

This module wires the server: it routes each request to its operation (`operations`), on top of the HTTP side
(`http_exchange`), and applies auth, read-only mode and faults first.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from modelopsx.basin.faults import FAULT_KINDS, EmulatorStats, FaultInjector
from modelopsx.basin.http_exchange import DISK_FULL, EmulatorServer, decode_target, insufficient_storage
from modelopsx.basin.operations import S3Operations, classify
from modelopsx.basin.quarantine import Quarantine
from modelopsx.basin.s3xml import S3Error
from modelopsx.basin.sigv4 import SigV4Verifier
from modelopsx.basin.store_fs import OWNER_ADDRESS, PLAIN_ALIAS, FsStore

log = logging.getLogger(__name__)

# The owner of stores created by a plain alias; with the default alias this gives the default store.
DEFAULT_OWNER = "0x0000000000000000000000000000000000000001"
ABANDONED_UPLOAD_AGE = 24 * 3600.0  # seconds after which an unfinished multipart upload is removed at start
MAX_KEY_BYTES = 1024
_WRITE_METHODS = {"PUT", "POST", "DELETE"}


class _Server(EmulatorServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # parallel sync workers connect in bursts; the default backlog of 5 drops SYNs
    emulator: BasinEmulator

    def __init__(self, address: tuple[str, int], emulator: BasinEmulator) -> None:
        self.emulator = emulator
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)


class _Handler(S3Operations):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small S3 responses must not wait for delayed ACKs
    timeout = 300  # seconds a socket may sit silent (idle keep-alive or stalled body) before it is closed
    server: _Server

    def version_string(self) -> str:
        return "BasinEmulator/0.1"

    # ---- plumbing --------------------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # ---- request lifecycle -----------------------------------------------------------------------------
    def _dispatch(self) -> None:
        emu = self.server.emulator
        self.request_id = secrets.token_hex(8).upper()
        self.body_state = "unread"  # unread | continued | consumed
        self.hdrs: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            self.hdrs.setdefault(name.lower(), []).append(value)
        raw_path, _, self.raw_query = self.path.partition("?")
        if raw_path.startswith(("http://", "https://")):  # absolute-form request target
            raw_path = "/" + raw_path.split("/", 3)[3] if raw_path.count("/") >= 3 else "/"
        self.raw_path = raw_path
        self.truncate = False
        self.response_started = False
        try:
            bucket, key, self.query = decode_target(raw_path, self.raw_query)
        except S3Error as err:
            emu.stats.count_request("Invalid")
            self._send_error(err)
            self._settle_body()
            return
        self.bucket, self.key = emu.resolve_store(bucket), key
        operation = classify(self.command, bucket, key, self.query)
        if operation == "UploadPart" and "x-amz-copy-source" in self.hdrs:
            operation = "UploadPartCopy"
        emu.stats.count_request(operation)
        if emu.latency_ms > 0:
            time.sleep(emu.latency_ms / 1000)
        fault = emu.faults.pick(truncatable=operation == "GetObject")
        if fault is not None:
            emu.stats.count_fault(fault)
        if fault == "drop":
            self._drop()
            return
        try:
            if fault == "500":
                raise S3Error(500, "InternalError", "injected fault: internal error, please retry")
            self.truncate = fault == "truncate"
            if len(key.encode("utf-8")) > MAX_KEY_BYTES:
                raise S3Error(400, "KeyTooLongError", f"object keys are limited to {MAX_KEY_BYTES} bytes")
            signing = (
                emu.verifier.verify(self.command, raw_path, self.raw_query, self.hdrs)
                if emu.verifier is not None
                else None
            )
            self.signing = signing
            if emu.read_only and self.command in _WRITE_METHODS:
                raise S3Error(
                    501,
                    "NotImplemented",
                    "this store is read-only (no private key configured); writes are not implemented",
                )
            getattr(self, "_op_" + operation)()
        except S3Error as err:
            self._send_error(err)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except OSError as exc:
            if exc.errno in DISK_FULL:
                self._send_error(insufficient_storage())
            else:
                self._internal_error(exc)
        except Exception as exc:
            self._internal_error(exc)
        self._settle_body()


class BasinEmulator:
    """A Basin S3 endpoint on loopback, persisted under `root`. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        root: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        access_key: str | None = None,
        secret_key: str | None = None,
        read_only: bool = False,
        fail_rate: float = 0.0,
        fail_seed: int = 0,
        latency_ms: int = 0,
        max_object_size: int = 1 << 30,
        list_cap: int = 10_000,
        fault_kinds: Iterable[str] | str = FAULT_KINDS,
        owner: str = DEFAULT_OWNER,
        abandoned_upload_age: float | None = ABANDONED_UPLOAD_AGE,
    ) -> None:
        # Auth is all or nothing: both keys (checked on every request) or neither (no auth at all).
        if (access_key is None) != (secret_key is None):
            raise ValueError("give both access_key and secret_key, or neither")
        if access_key == "" or secret_key == "":
            raise ValueError(
                "an empty access or secret key would turn authentication off; give both keys "
                "non-empty, or neither to run without auth"
            )
        if max_object_size < 1:
            raise ValueError(f"max_object_size must be at least 1 byte, got {max_object_size}")
        if list_cap < 1:
            raise ValueError(f"list_cap must be at least 1, got {list_cap}")
        if not OWNER_ADDRESS.fullmatch(owner):
            raise ValueError(f"owner {owner!r} is not an address of the form 0x<40 hex digits>")
        if abandoned_upload_age is not None and abandoned_upload_age < 0:
            raise ValueError(f"abandoned_upload_age must be >= 0 seconds, got {abandoned_upload_age}")
        self.root = Path(root)
        self.host = host
        self.port = port
        self.read_only = read_only
        self.latency_ms = latency_ms
        self.max_object_size = max_object_size
        self.list_cap = list_cap
        self.access_key = access_key
        self.owner = owner
        self.verifier = SigV4Verifier(access_key, secret_key) if access_key and secret_key else None
        self.faults = FaultInjector(fail_rate, fail_seed, fault_kinds)
        self.stats = EmulatorStats()
        self.store = FsStore(self.root)  # RootInUseError while another process serves this root
        self.abandoned_uploads_removed = (0, 0)  # (uploads, bytes) cleaned when the store opened
        if abandoned_upload_age is not None:
            try:
                self.abandoned_uploads_removed = self.store.remove_abandoned_uploads(abandoned_upload_age)
            except BaseException:
                self.store.close()
                raise
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def auth(self) -> str:
        """ "sigv4" when every request must be signed with the keys, "none" when anyone may read and write."""
        return "sigv4" if self.verifier is not None else "none"

    def resolve_store(self, name: str) -> str:
        """A plain alias (as Basin's adapter accepts) names the owner's store `0x<owner>.<alias>`."""
        return f"{self.owner}.{name}" if PLAIN_ALIAS.fullmatch(name) else name

    # Faults are settable at runtime: `emulator.fail_rate = 0.2`.
    @property
    def fail_rate(self) -> float:
        return self.faults.rate

    @fail_rate.setter
    def fail_rate(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError("fail_rate must be between 0 and 1")
        self.faults.rate = value

    @property
    def fault_kinds(self) -> frozenset[str]:
        return self.faults.kinds

    @fault_kinds.setter
    def fault_kinds(self, kinds: Iterable[str] | str) -> None:
        from modelopsx.basin.faults import parse_fault_kinds

        self.faults.kinds = parse_fault_kinds(kinds)

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    def create_store(self, name: str) -> bool:
        """Create a store (bucket) directly; False if it already exists."""
        try:
            self.store.create_bucket(self.resolve_store(name))
        except S3Error as err:
            if err.code == "BucketAlreadyExists":
                return False
            raise
        return True

    @property
    def quarantine(self) -> Quarantine:
        """What the store moved aside because it could not account for it (reported at start)."""
        return self.store.quarantine

    def start(self) -> BasinEmulator:
        if self._server is not None:
            return self
        if not self.store.root_lock.held:
            raise RuntimeError("this emulator was stopped and its root released; create a new one")
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self.store.root_lock.record(
            endpoint=f"http://{self.host}:{self.port}", auth=self.auth, access_key=self.access_key
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"basin-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the root (also for an emulator that was never started)."""
        server, self._server = self._server, None
        if server is None:
            self.store.close()
            return
        server.shutdown()
        with server.connections_lock:
            open_connections = list(server.connections)
        for conn in open_connections:  # idle keep-alive connections would otherwise outlive the server
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.store.close()

    def __enter__(self) -> BasinEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"endpoint={self.endpoint}" if self._server else "stopped"
        return f"BasinEmulator(root={str(self.root)!r}, {state})"


__all__ = ["BasinEmulator"]
