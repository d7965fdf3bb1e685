"""The tensor connector's small control protocol: handles by key, and raw bytes for readers on other hosts.

The owning (producer) process serves its resident objects on a TCP socket (127.0.0.1 by default). A request
is a 4-byte big-endian length and a JSON object `{"op": ..., ...}`; a reply is the same, followed, for
`bytes`, by the raw bytes of each object back to back. Handles are plain data (pydantic models as JSON):
nothing is pickled in either direction.

Ops: `hello` (who is serving), `handles` (how to map each key: a shared-memory segment or a CUDA IPC
handle), `bytes` (the objects' bytes, for a reader that cannot map them), `exists`, `evict`, `list`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import struct
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel

from freight.connectors.protocol import Buffer
from freight.errors import ServiceUnavailableError, StoreError

_LEN = struct.Struct(">I")
MAX_MESSAGE = 64 << 20
_CHUNK = 8 << 20


class CudaIpc(BaseModel):
    """What `torch.UntypedStorage._share_cuda_()` returns, with bytes as base64 strings."""

    device: int
    handle: str
    size: int
    offset: int
    ref_counter_handle: str
    ref_counter_offset: int
    event_handle: str | None
    event_sync_required: bool


class Handle(BaseModel):
    """How a reader on the producer's host maps one object without copying it."""

    kind: Literal["shm-bytes", "shm-tensor", "cuda"]
    host_id: str
    nbytes: int
    header: str | None = None  # base64 framing header of a resident tensor
    path: str | None = None  # shared-memory segment
    segment_size: int = 0
    dtype: str | None = None
    shape: list[int] | None = None
    stride: list[int] | None = None
    storage_offset: int = 0
    cuda: CudaIpc | None = None


def send_message(sock: socket.socket, message: dict[str, Any], payloads: Sequence[Buffer] = ()) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(_LEN.pack(len(data)) + data)
    for payload in payloads:
        view = memoryview(payload).cast("B") if not isinstance(payload, bytes) else memoryview(payload)
        for start in range(0, view.nbytes, _CHUNK):
            sock.sendall(view[start : start + _CHUNK])


def recv_exact(sock: socket.socket, view: memoryview) -> None:
    pos = 0
    while pos < view.nbytes:
        n = sock.recv_into(view[pos:], min(view.nbytes - pos, _CHUNK))
        if n == 0:
            raise ConnectionError("the tensor store connection closed mid-message")
        pos += n


def recv_message(sock: socket.socket) -> dict[str, Any] | None:
    """The next JSON message, or None if the peer closed the connection cleanly."""
    head = bytearray(_LEN.size)
    try:
        recv_exact(sock, memoryview(head))
    except ConnectionError:
        return None
    (length,) = _LEN.unpack(head)
    if length > MAX_MESSAGE:
        raise StoreError(f"tensor store message of {length} bytes exceeds the {MAX_MESSAGE} byte limit")
    body = bytearray(length)
    recv_exact(sock, memoryview(body))
    message = json.loads(body)
    if not isinstance(message, dict):
        raise StoreError("tensor store protocol error: a message is not a JSON object")
    return message


#: op -> function(request) -> (reply, payloads)
Handler = Callable[[dict[str, Any]], tuple[dict[str, Any], list[Buffer]]]


class _RequestHandler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            try:
                request = recv_message(sock)
            except (OSError, ValueError, StoreError):
                return
            if request is None:
                return
            try:
                reply, payloads = self.server.dispatch(request)
            except Exception as exc:  # reported to the client, which raises it there
                reply, payloads = {"error": f"{type(exc).__name__}: {exc}"}, []
            try:
                send_message(sock, reply, payloads)
            except OSError:
                return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], dispatch: Handler) -> None:
        self.dispatch = dispatch
        super().__init__(address, _RequestHandler)


class TensorServer:
    """Serves one owner's objects in a background thread until `close()`."""

    def __init__(self, host: str, port: int, dispatch: Handler) -> None:
        try:
            self._server = _Server((host, port), dispatch)
        except OSError as exc:
            raise StoreError(f"the tensor store cannot listen on {host}:{port}: {exc.strerror}") from exc
        bound = self._server.server_address
        self.host: str = str(bound[0])
        self.port: int = int(bound[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # how long close() waits for the loop to notice
            name=f"freight-tensor-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class TensorClient:
    """A reader's connection to an owner (one socket per thread, reconnected after a failure)."""

    def __init__(self, address: str, timeout: float) -> None:
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            raise StoreError(f"tensor store address {address!r} is not host:port")
        self.address = address
        self._target = (host.strip("[]"), int(port))
        self.timeout = timeout
        self._local = threading.local()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def _socket(self) -> socket.socket:
        sock: socket.socket | None = getattr(self._local, "sock", None)
        if sock is None:
            try:
                sock = socket.create_connection(self._target, timeout=self.timeout)
            except OSError as exc:
                raise ServiceUnavailableError(
                    f"cannot reach the tensor store owner at {self.address} ({exc}); the producer process "
                    "that holds the tensors must be running (tensors live in its memory until evicted)"
                ) from exc
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._local.sock = sock
            with self._lock:
                self._sockets.append(sock)
        return sock

    def _drop(self) -> None:
        sock = getattr(self._local, "sock", None)
        self._local.sock = None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def call(self, request: dict[str, Any]) -> tuple[dict[str, Any], socket.socket]:
        """Send `request`; the reply, and the socket to read any raw payloads from."""
        for attempt in range(2):
            sock = self._socket()
            try:
                send_message(sock, request)
                reply = recv_message(sock)
                if reply is None:
                    raise ConnectionError("the owner closed the connection")
            except OSError as exc:
                self._drop()
                if attempt == 1:
                    raise ServiceUnavailableError(
                        f"the tensor store owner at {self.address} stopped answering ({exc})"
                    ) from exc
                continue
            if "error" in reply:
                raise StoreError(f"the tensor store owner at {self.address} failed: {reply['error']}")
            return reply, sock
        raise AssertionError("unreachable")

    def read_payload(self, sock: socket.socket, view: memoryview) -> None:
        try:
            recv_exact(sock, view)
        except OSError as exc:
            self._drop()
            raise ServiceUnavailableError(f"lost the tensor store owner at {self.address} ({exc})") from exc

    def close(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
