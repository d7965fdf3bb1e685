"""Where the local Kafka infrastructure lives: its templates, its jars, and the dev state directory."""

from __future__ import annotations

import os
import sysconfig
from importlib.resources import files
from pathlib import Path

KAFKA_VERSION = "4.1.2"


def kafka_infra_dir() -> Path:
    """The directory holding pom.xml, the server.properties template and log4j2.xml."""
    return Path(str(files("freight.kafka_infra")))


def _installed(path: Path) -> bool:
    purelib = Path(sysconfig.get_paths()["purelib"]).resolve()
    return purelib in path.resolve().parents


def kafka_libs_dir() -> Path:
    """Where the broker jars are (or go): FREIGHT_KAFKA_LIBS, infra/kafka/libs in a checkout, else a cache."""
    env = os.environ.get("FREIGHT_KAFKA_LIBS")
    if env:
        return Path(env)
    infra = kafka_infra_dir()
    if not _installed(infra) and os.access(infra, os.W_OK):
        return infra / "libs"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "freight" / f"kafka-{KAFKA_VERSION}" / "libs"
