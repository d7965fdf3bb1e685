"""Secret redaction for every text Freight shows: messages, status output, pickles and logs.

Passwords reach Freight in URLs (`http://user:pw@registry:8081`, accepted by confluent's client), in
librdkafka properties (`sasl.password`, `ssl.key.password`, `sasl.jaas.config`, ...) and in basic-auth
settings. None of them may appear in an error, in `freight status`, in a pickled proxy or in a log line:
this module is the one place that knows how to hide them. It imports nothing of Freight, so every layer
may use it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
#: librdkafka / Java client property names whose values are secret.
_SECRET_KEY = re.compile(r"(password|secret|jaas|token|credential|private|key\.pem|keystore\.key)", re.I)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<pw>[^@/\s]*)@")


def is_secret_key(name: str) -> bool:
    """True if a client property called `name` holds a secret (its value must never be shown)."""
    return bool(_SECRET_KEY.search(name))


def redact_url(url: str | None) -> str | None:
    """`url` with the password of its user-info replaced (`http://user:***@host`); None stays None."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:{MASK}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact_text(text: str) -> str:
    """`text` with every `scheme://user:password@` password masked."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)


def redact_properties(props: Mapping[str, str]) -> dict[str, str]:
    """A copy of client properties with secret values masked (for status output and messages)."""
    return {k: (MASK if is_secret_key(k) else redact_text(str(v))) for k, v in props.items()}
