"""A real single-node Apache Kafka broker (KRaft combined mode) run from Maven Central jars.

Steps: resolve the jars with Maven if missing, format the storage directory once (`kafka.tools.StorageTool
format`), start `kafka.Kafka` detached on 127.0.0.1 with a small heap and fast-start JVM flags, and wait
until an AdminClient sees the broker ready. A broker that exits during start is reported with its log tail.
"""

from __future__ import annotations

import base64
import os
import shutil
import string
import subprocess
import time
import uuid
from pathlib import Path

from pydantic import BaseModel, Field

from freight.config import FreightSettings
from freight.dev import procs
from freight.dev.paths import kafka_infra_dir, kafka_libs_dir
from freight.dev.state import ServiceRecord
from freight.errors import BrokerUnavailableError, DevServiceError, MissingToolError, PortInUseError
from freight.kafka.admin import KafkaAdmin

COMPLETE_MARKER = ".complete"
DEFAULT_JVM_OPTS = (
    "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData -Xss512k -Djava.awt.headless=true"
)


class _PortTakenError(DevServiceError):
    """The broker could not bind a port (another process took it after it was chosen)."""


class BrokerOptions(BaseModel):
    """How to start the local broker; every field has a test- and laptop-friendly default."""

    port: int | None = Field(None, description="Client port; default 9092, or a free one if that is taken.")
    controller_port: int | None = Field(None, description="KRaft controller port; default 9093 or free.")
    heap: str = Field(os.environ.get("FREIGHT_KAFKA_HEAP", "512m"), description="JVM -Xmx.")
    jvm_opts: str = Field(os.environ.get("FREIGHT_KAFKA_JVM_OPTS", DEFAULT_JVM_OPTS))
    start_timeout_s: float = 60.0
    prefer_default_ports: bool = Field(True, description="Use 9092/9093 when free (tests set False).")
    overrides: dict[str, str] = Field(default_factory=dict, description="Extra server.properties entries.")


def java_path() -> str:
    """The java executable, or a MissingToolError that says what to install."""
    found = shutil.which("java", path=_java_search_path())
    if not found:
        raise MissingToolError(
            "`java` was not found on PATH: the local Kafka broker needs a Java 17+ runtime. Install one "
            "(Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`; macOS: `brew install openjdk@17`), "
            "or point Freight at an existing cluster with FREIGHT_KAFKA_BOOTSTRAP=host:port."
        )
    return found


def _java_search_path() -> str:
    path = os.environ.get("PATH", "")
    home = os.environ.get("JAVA_HOME")
    return f"{home}/bin:{path}" if home else path


def ensure_jars(*, quiet: bool = True) -> Path:
    """Resolve the broker jars with Maven into the libs directory, once; return that directory."""
    libs = kafka_libs_dir()
    if (libs / COMPLETE_MARKER).exists():
        return libs
    mvn = shutil.which("mvn")
    if not mvn:
        raise MissingToolError(
            f"the Kafka jars are not in {libs} and `mvn` was not found to fetch them. Install Maven "
            "(Debian/Ubuntu: `apt-get install maven`), or set FREIGHT_KAFKA_LIBS to a directory holding the "
            "Kafka jars, or FREIGHT_KAFKA_BOOTSTRAP to an existing cluster."
        )
    pom = kafka_infra_dir() / "pom.xml"
    cmd = [mvn, "-B", "-f", str(pom), "dependency:copy-dependencies", f"-Dfreight.libs.dir={libs}"]
    if quiet:
        cmd.insert(2, "-q")
    libs.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        out = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise DevServiceError(f"Maven could not resolve the Kafka jars (exit {proc.returncode}):\n{out}")
    (libs / COMPLETE_MARKER).write_text("ok\n")
    return libs


def cluster_id() -> str:
    """A random Kafka cluster id (a base64url UUID, as `kafka-storage random-uuid` prints).

    Like Kafka's own `Uuid.randomUuid`, never one that starts with "-": a command-line parser would take it
    for an option (one id in 64 would otherwise make `format` fail).
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


class KafkaBroker:
    """The local broker service of `freight dev`."""

    name = "kafka"

    def __init__(
        self,
        state_dir: Path,
        options: BrokerOptions | None = None,
        *,
        node_id: int = 1,
        subdir: str = "kafka",
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.options = options or BrokerOptions()
        self.node_id = node_id
        self.data_dir = self.state_dir / subdir / "data"
        self.log_dir = self.state_dir / subdir / "logs"
        self.config_file = self.state_dir / subdir / "server.properties"
        # A cluster (KafkaCluster) sets these for every node; alone, a node is its own quorum.
        self.voters: str | None = None
        self.replicas = 1
        self.cluster_id: str | None = None

    def _ports(self) -> tuple[int, int]:
        for label, port in (("broker", self.options.port), ("controller", self.options.controller_port)):
            if port is not None and procs.port_in_use(port):
                raise PortInUseError(
                    f"{label} port {port} is already in use by another process; choose another with "
                    f"`freight dev up --{'port' if label == 'broker' else 'controller-port'} N`, or omit it "
                    "to let Freight pick a free one."
                )
        defaults = (9092, 9093) if self.options.prefer_default_ports else (-1, -1)
        broker = procs.choose_port(self.options.port, defaults[0])
        controller = procs.choose_port(self.options.controller_port, defaults[1], {broker})
        return broker, controller

    def _write_config(self, broker_port: int, controller_port: int) -> None:
        template = string.Template((kafka_infra_dir() / "server.properties.template").read_text())
        text = template.substitute(
            node_id=self.node_id,
            voters=self.voters or f"{self.node_id}@127.0.0.1:{controller_port}",
            replicas=self.replicas,
            min_isr=2 if self.replicas >= 3 else 1,
            broker_port=broker_port,
            controller_port=controller_port,
            log_dir=self.data_dir,
            offsets_partitions=4,
            group_heartbeat_ms=500,
            group_session_ms=6000,
        )
        if self.options.overrides:
            text += "\n# overrides\n" + "".join(f"{k}={v}\n" for k, v in self.options.overrides.items())
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(text)

    def _java_cmd(self, java: str, libs: Path, main: list[str]) -> list[str]:
        return [
            java,
            f"-Xmx{self.options.heap}",
            "-Xms64m",
            *self.options.jvm_opts.split(),
            f"-Dlog4j2.configurationFile={kafka_infra_dir() / 'log4j2.xml'}",
            f"-Dkafka.logs.dir={self.log_dir}",
            "-cp",
            f"{libs}/*",
            *main,
        ]

    def _format(self, java: str, libs: Path) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = self._java_cmd(
            java,
            libs,
            [
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={self.cluster_id or cluster_id()}",
                "-c",
                str(self.config_file),
            ],
        )
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise DevServiceError(
                f"formatting Kafka storage in {self.data_dir} failed (exit {proc.returncode}):\n"
                f"{(proc.stdout + proc.stderr)[-3000:]}"
            )

    def start(self, *, reuse_ports: dict[str, int] | None = None) -> ServiceRecord:
        """Start the broker and block until it is ready; return its record for the state file.

        Ports Freight chose itself can be taken by another process between choosing and binding; the
        broker then exits with "Address already in use" and is started again on new ports (3 tries).
        Ports given explicitly (or `reuse_ports`, for a restart on the same address) are tried once.
        """
        java = java_path()
        libs = ensure_jars()
        chosen = reuse_ports is None and self.options.port is None and self.options.controller_port is None
        for attempt in range(3 if chosen else 1):
            ports = (reuse_ports["broker"], reuse_ports["controller"]) if reuse_ports else self._ports()
            try:
                return self._start_once(java, libs, *ports)
            except _PortTakenError as exc:
                if attempt == 2 or not chosen:
                    raise DevServiceError(str(exc)) from None
        raise AssertionError("unreachable")

    def _start_once(self, java: str, libs: Path, broker_port: int, controller_port: int) -> ServiceRecord:
        proc, record, stdout_log = self.launch(java, libs, broker_port, controller_port)
        self._wait_ready(proc, record, stdout_log)
        return record

    def launch(
        self, java: str, libs: Path, broker_port: int, controller_port: int
    ) -> tuple[subprocess.Popen[bytes], ServiceRecord, Path]:
        """Write the config, format storage and spawn the JVM, without waiting for it (a cluster's nodes
        only become ready together, once a quorum of controllers runs)."""
        self._write_config(broker_port, controller_port)
        self._format(java, libs)
        stdout_log = self.log_dir / "stdout.log"
        cmd = self._java_cmd(java, libs, ["kafka.Kafka", str(self.config_file)])
        proc = procs.spawn(cmd, log_file=stdout_log)
        record = ServiceRecord(
            name=self.name if self.node_id == 1 else f"{self.name}-{self.node_id}",
            pid=proc.pid,
            marker=str(self.config_file),
            address=f"127.0.0.1:{broker_port}",
            ports={"broker": broker_port, "controller": controller_port},
            data_dir=str(self.data_dir),
            log_file=str(self.log_dir / "server.log"),
            env={"FREIGHT_KAFKA_BOOTSTRAP": f"127.0.0.1:{broker_port}"},
        )
        return proc, record, stdout_log

    def _wait_ready(self, proc: subprocess.Popen[bytes], record: ServiceRecord, stdout_log: Path) -> None:
        admin = KafkaAdmin(FreightSettings(kafka_bootstrap=record.address), timeout=2.0, quiet=True)
        deadline = time.monotonic() + self.options.start_timeout_s
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                log_tail = procs.tail(Path(record.log_file))
                if "Address already in use" in log_tail:
                    raise _PortTakenError(
                        f"port {record.ports['broker']} or {record.ports['controller']} was taken by another "
                        f"process before the broker could bind it:\n{log_tail}"
                    )
                raise DevServiceError(
                    f"the Kafka broker exited with code {code} during start. Last lines of its log "
                    f"({record.log_file}):\n{procs.tail(Path(record.log_file))}\n"
                    f"stdout/stderr ({stdout_log}):\n{procs.tail(stdout_log, 15)}"
                )
            try:
                admin.wait_ready(min(2.0, max(deadline - time.monotonic(), 0.1)))
                return
            except BrokerUnavailableError:
                continue
        procs.stop_process(proc.pid, grace_s=5)
        raise DevServiceError(
            f"the Kafka broker did not become ready within {self.options.start_timeout_s:g}s. "
            f"Last lines of its log:\n{procs.tail(Path(record.log_file))}"
        )

    @staticmethod
    def health(record: ServiceRecord) -> tuple[bool, str]:
        """(healthy, detail) as seen by a client of the recorded address."""
        if not procs.pid_matches(record.pid, record.marker):
            return False, f"process {record.pid} is not running"
        try:
            admin = KafkaAdmin(FreightSettings(kafka_bootstrap=record.address), timeout=3.0, quiet=True)
            brokers = admin.ping(3.0)
        except BrokerUnavailableError as exc:
            return False, str(exc)
        return True, f"{brokers} broker(s) answering"


class KafkaCluster:
    """`freight dev up --brokers N`: N combined (broker + controller) KRaft nodes from the same jars.

    One cluster id, a quorum of every node's controller, N replicas for Kafka's internal topics and
    `min.insync.replicas` 2 from three nodes on. The first node's record is the `kafka` service; the others
    are recorded as `kafka-2`, ... (`extra_records`), so `freight dev down` stops them all.
    """

    name = "kafka"

    def __init__(self, state_dir: Path, options: BrokerOptions, brokers: int) -> None:
        if brokers < 2:
            raise DevServiceError("a cluster has 2 or more brokers; one broker is `freight dev up`")
        self.options = options
        self.nodes = [
            KafkaBroker(state_dir, options, node_id=i, subdir="kafka" if i == 1 else f"kafka-{i}")
            for i in range(1, brokers + 1)
        ]
        self.extra_records: dict[str, ServiceRecord] = {}

    def start(self) -> ServiceRecord:
        """Start every node and wait until a client sees all of them; return the first node's record."""
        java = java_path()
        libs = ensure_jars()
        taken: set[int] = set()
        ports: list[tuple[int, int]] = []
        for _ in self.nodes:
            broker = procs.choose_port(None, -1, taken)
            taken.add(broker)
            controller = procs.choose_port(None, -1, taken)
            taken.add(controller)
            ports.append((broker, controller))
        voters = ",".join(f"{n.node_id}@127.0.0.1:{c}" for n, (_b, c) in zip(self.nodes, ports, strict=True))
        shared_id = cluster_id()
        launched = []
        for node, (broker, controller) in zip(self.nodes, ports, strict=True):
            node.voters, node.replicas, node.cluster_id = voters, min(3, len(self.nodes)), shared_id
            launched.append(node.launch(java, libs, broker, controller))
        bootstrap = ",".join(f"127.0.0.1:{b}" for b, _c in ports)
        try:
            self._wait_all(bootstrap, launched)
        except Exception:
            for proc, _record, _log in launched:
                procs.stop_process(proc.pid, grace_s=5)
            raise
        records = [record for _proc, record, _log in launched]
        for record in records:
            record.env = {"FREIGHT_KAFKA_BOOTSTRAP": bootstrap}
        first = records[0]
        first.address = bootstrap
        self.extra_records = {r.name: r for r in records[1:]}
        return first

    def _wait_all(
        self, bootstrap: str, launched: list[tuple[subprocess.Popen[bytes], ServiceRecord, Path]]
    ) -> None:
        admin = KafkaAdmin(FreightSettings(kafka_bootstrap=bootstrap), timeout=2.0, quiet=True)
        deadline = time.monotonic() + self.options.start_timeout_s + 30
        while time.monotonic() < deadline:
            for proc, record, stdout_log in launched:
                if proc.poll() is not None:
                    raise DevServiceError(
                        f"Kafka node {record.name} exited with code {proc.returncode} during start. "
                        f"Last lines of its log ({record.log_file}):\n{procs.tail(Path(record.log_file))}\n"
                        f"stdout/stderr:\n{procs.tail(stdout_log, 15)}"
                    )
            try:
                if admin.ping(2.0) == len(launched):
                    admin.wait_ready(5.0)
                    return
            except BrokerUnavailableError:
                pass
            time.sleep(0.3)
        raise DevServiceError(f"the {len(launched)}-node Kafka cluster did not become ready at {bootstrap}")

    @staticmethod
    def health(record: ServiceRecord) -> tuple[bool, str]:
        """(healthy, detail) of the cluster, as a client of its bootstrap list sees it."""
        return KafkaBroker.health(record)
