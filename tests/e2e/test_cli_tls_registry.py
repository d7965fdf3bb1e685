"""Registry TLS settings (issue 16): `--registry-ca/--registry-cert/--registry-key` reach the project's
registry behind a TLS endpoint that requires a client certificate (mutual TLS), for `schemas` (httpx) and
`produce`/`consume` (confluent-kafka's registry client); `--command-config` is read as Kafka's tools read it.

The TLS endpoint is a small relay in front of the session's registry server (the registry itself speaks
plain HTTP), with certificates made by openssl for this test."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from freight.config import FreightSettings

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certs(d: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))  # fmt: skip
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"))  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"),
                "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
                "-extfile", str(d / f"{name}.ext"), "-out", str(d / f"{name}.pem"))  # fmt: skip
    return {n: d / n for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def tls_registry(registry_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, Path]]]:
    """https://127.0.0.1:PORT relaying to the session registry; it requires a client certificate."""
    certs = make_certs(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs["ca.pem"]))
    context.load_cert_chain(str(certs["server.pem"]), str(certs["server.key"]))
    context.verify_mode = ssl.CERT_REQUIRED
    upstream = urlsplit(registry_url)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            try:
                conn = context.wrap_socket(raw, server_side=True)
            except (OSError, ssl.SSLError):
                raw.close()
                continue
            back = socket.create_connection((upstream.hostname or "127.0.0.1", upstream.port or 80))
            threading.Thread(target=_pump, args=(conn, back), daemon=True).start()
            threading.Thread(target=_pump, args=(back, conn), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{port}", certs
    stop.set()
    listener.close()


def freight(
    settings: FreightSettings, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, FREIGHT_KAFKA_BOOTSTRAP=settings.kafka_bootstrap)
    env.pop("FREIGHT_SCHEMA_REGISTRY_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "freight.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_registry_tls_flags_reach_a_mutual_tls_registry(
    stream_settings: FreightSettings, tls_registry: tuple[str, dict[str, Path]], tmp_path: Path
) -> None:
    url, certs = tls_registry
    tls = ("--registry", url, "--registry-ca", str(certs["ca.pem"]))
    client = ("--registry-cert", str(certs["client.pem"]), "--registry-key", str(certs["client.key"]))

    listed = freight(stream_settings, "schemas", "list", *tls, *client, "--json")
    assert listed.returncode == 0, listed.stderr
    assert "subjects" in json.loads(listed.stdout)
    old_name = freight(stream_settings, "schemas", "list", "--url", url, *tls[2:], *client, "--json")
    assert old_name.returncode == 0, old_name.stderr  # the old flag name still works (hidden)

    refused = freight(stream_settings, "schemas", "list", *tls, "--json")  # no client certificate
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    untrusted = freight(stream_settings, "schemas", "list", "--registry", url, *client)  # CA not given
    assert untrusted.returncode != 0 and "Traceback" not in untrusted.stderr
    key_only = freight(stream_settings, "schemas", "list", *tls, "--registry-key", str(certs["client.key"]))
    assert key_only.returncode == 2 and "--registry-cert" in key_only.stderr

    topic = f"cli-tls-{uuid.uuid4().hex[:8]}"
    store = str(tmp_path / "store")
    produced = freight(stream_settings, "produce", topic, "--store-dir", store, *tls, *client, stdin="x\ny\n")
    assert produced.returncode == 0, produced.stderr
    consumed = freight(stream_settings, "consume", topic, "--idle-timeout", "2", *tls, *client)
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout.split() == ["x", "y"]


def test_command_config_is_read_like_kafkas_tools(stream_settings: FreightSettings, tmp_path: Path) -> None:
    props = tmp_path / "client.properties"
    # a continuation line and an escaped separator, as Java's Properties reads them
    props.write_text("# from the ops team\nclient.id = freight\\\n    -cli3\nsocket.timeout.ms\\=x=1\n")
    result = freight(stream_settings, "topics", "list", "--command-config", str(props), "--json")
    assert (
        result.returncode == 2 and "socket.timeout.ms=x" in result.stderr
    )  # reached librdkafka, which refuses it
    props.write_text("client.id = freight\\\n    -cli3\nsecurity.protocol=SSL\n")
    tls = freight(stream_settings, "topics", "list", "--command-config", str(props))
    assert tls.returncode == 3 and "Traceback" not in tls.stderr  # the broker speaks plaintext: TLS fails
    props.write_text("client.id=freight-cli3\n")
    ok = freight(stream_settings, "topics", "list", "--command-config", str(props), "--json")
    assert ok.returncode == 0 and isinstance(json.loads(ok.stdout), list)
