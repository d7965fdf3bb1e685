"""What a store config read from Kafka may make this process touch: the local allow-list.

Store configs travel through the `_freight_stores` topic, and anyone who can write that topic can write a
config. A config therefore only ever names *where* a store is; whether this process may go there is its own
decision, made here from its own settings (docs/security.md):

- file stores: the root must lie under one of `allowed_store_roots` (default: this process's `store_dir`);
- S3 stores: the endpoint must be one of `allowed_s3_endpoints` (default: this process's own
  `s3_endpoint_url`, or AWS when unset), and the bucket one of `allowed_s3_buckets` when that list is set;
- tensor stores: the owner's address must be on one of `allowed_store_hosts` (default: loopback);
- memory stores live in this process only; kinds registered in code (`register_connector`) are trusted
  because code registered them.

A refused config raises `StoreTrustError` naming the store, what it asked for and the setting that allows
it. Nothing is built, created, opened or connected to before the check passes.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from freight.config import FreightSettings
from freight.errors import StoreTrustError
from freight.redact import redact_url
from freight.stores.config import StoreConfig

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def check_store_config(config: StoreConfig, settings: FreightSettings) -> None:
    """Raise StoreTrustError unless `config` stays within what `settings` allow (see the module docstring).

    Args:
        config: A store config read from the store catalog (untrusted).
        settings: This process's settings, which hold its allow-lists.
    """
    kind = config.connector
    opts = config.options
    if kind == "file":
        _check_root(config.name, opts.get("root"), settings)
    elif kind == "s3":
        _check_s3(config.name, opts, settings)
    elif kind == "tensor":
        _check_tensor(config.name, opts, settings)


def allowed_roots(settings: FreightSettings) -> list[Path]:
    """The directories file stores from the catalog may live under (resolved, symlinks followed)."""
    roots = settings.allowed_store_roots or [settings.store_dir]
    return [Path(os.path.realpath(Path(r).expanduser())) for r in roots]


def _check_root(name: str, root: Any, settings: FreightSettings) -> None:
    if not isinstance(root, str) or not root:
        raise StoreTrustError(f"store {name!r} from the store catalog names no file root; refusing it")
    real = Path(os.path.realpath(Path(root).expanduser()))
    allowed = allowed_roots(settings)
    if not any(real == a or a in real.parents for a in allowed):
        raise StoreTrustError(
            f"store {name!r} from the store catalog has its root at {root!r}, outside this process's "
            f"allowed store roots ({', '.join(str(a) for a in allowed)}); refusing to read, write or delete "
            "there. If the store is yours, allow its directory: FREIGHT_ALLOWED_STORE_ROOTS=/path[,/other]"
        )


def _endpoint_id(url: str | None) -> str:
    if not url:
        return "aws"
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme.lower()}://{host}:{port}"


def _check_s3(name: str, opts: dict[str, Any], settings: FreightSettings) -> None:
    endpoint = opts.get("endpoint_url") or settings.s3_endpoint_url
    allowed = settings.allowed_s3_endpoints or [settings.s3_endpoint_url or ""]
    if _endpoint_id(endpoint) not in {_endpoint_id(a or None) for a in allowed}:
        raise StoreTrustError(
            f"store {name!r} from the store catalog names the S3 endpoint {redact_url(endpoint) or 'AWS'}, "
            "which this process does not use; refusing to send it requests signed with this process's "
            "credentials. If the endpoint is yours, allow it with FREIGHT_ALLOWED_S3_ENDPOINTS=URL[,URL]"
        )
    buckets = settings.allowed_s3_buckets
    if buckets and opts.get("bucket") not in buckets:
        raise StoreTrustError(
            f"store {name!r} from the store catalog names the bucket {opts.get('bucket')!r}, not one of "
            f"FREIGHT_ALLOWED_S3_BUCKETS ({', '.join(buckets)})"
        )


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_tensor(name: str, opts: dict[str, Any], settings: FreightSettings) -> None:
    address = opts.get("address")
    if not isinstance(address, str) or not address:
        raise StoreTrustError(
            f"tensor store {name!r} from the store catalog has no owner address; a catalog entry may only "
            "point readers at an owner, never make this process serve"
        )
    host = address.rsplit(":", 1)[0].strip("[]")
    allowed = settings.allowed_store_hosts
    ok = host in allowed if allowed else _is_loopback(host)
    if not ok:
        raise StoreTrustError(
            f"tensor store {name!r} from the store catalog points at {address!r}, not an allowed host "
            f"({', '.join(allowed) if allowed else 'loopback only'}); if its owner is yours, allow the host "
            "with FREIGHT_ALLOWED_STORE_HOSTS=host[,host]"
        )
