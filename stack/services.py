"""The three servers of the local stack: how each is obtained, configured, started and asked if it is up."""

from __future__ import annotations

import base64
import logging
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from stack import probes
from stack.config import StackConfig
from stack.errors import StackError
from stack.prereqs import find_java17, find_redis_server, resolve_classpath

RESOURCES = Path(__file__).resolve().parent / "resources"


@dataclass
class Service:
    """One background server. `prepare` returns its argv; `probe` makes a real request."""

    name: str
    cfg: StackConfig
    ready_timeout_s: float
    stop_grace_s: float
    ports: tuple[int, ...]
    marker: str  # a string only our instance has on its command line (its config path)
    prepare: Callable[[], list[str]] = field(repr=False)
    probe: Callable[[], str | None] = field(repr=False)
    env: dict[str, str] | None = field(default=None, repr=False)  # None: inherit the launcher's

    @property
    def log(self) -> Path:
        return self.cfg.log(self.name)

    @property
    def pid_file(self) -> Path:
        return self.cfg.pid_file(self.name)


def kafka(cfg: StackConfig) -> Service:
    conf = cfg.conf("kafka")
    props = conf / "server.properties"

    def prepare() -> list[str]:
        java = find_java17(cfg.env)
        lib = resolve_classpath("kafka", RESOURCES / "kafka.pom.xml", cfg.lib("kafka"), cfg.log("maven"))
        conf.mkdir(parents=True, exist_ok=True)
        data = cfg.data("kafka")
        props.write_text(_kafka_properties(cfg, data))
        log4j = conf / "log4j.properties"
        log4j.write_text(_KAFKA_LOG4J)
        jvm = [
            str(java), f"-Xms{min_heap(cfg.kafka_heap)}", f"-Xmx{cfg.kafka_heap}",
            "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={cfg.state / 'logs'}", f"-Dlog4j.configuration=file:{log4j}",
            "-cp", f"{lib}/*",
        ]
        if not (data / "meta.properties").exists():
            _format_kafka_storage(jvm, props, cfg)
        return [*jvm, "kafka.Kafka", str(props)]

    return Service(
        name="kafka", cfg=cfg, ready_timeout_s=120, stop_grace_s=30,
        ports=(cfg.kafka_port, cfg.kafka_controller_port), marker=str(props),
        prepare=prepare, probe=lambda: probes.kafka(f"127.0.0.1:{cfg.kafka_port}"),
    )


def cassandra(cfg: StackConfig) -> Service:
    conf = cfg.conf("cassandra")
    yaml_path = conf / "cassandra.yaml"

    def prepare() -> list[str]:
        java = find_java17(cfg.env)
        lib = resolve_classpath(
            "cassandra", RESOURCES / "cassandra.pom.xml", cfg.lib("cassandra"), cfg.log("maven")
        )
        jamm = sorted(lib.glob("jamm-*.jar"))
        if not jamm:
            raise StackError(f"jamm agent jar missing from {lib}; delete that folder to resolve again")
        conf.mkdir(parents=True, exist_ok=True)
        yaml_path.write_text(_cassandra_yaml(cfg))
        logback = conf / "logback.xml"
        logback.write_text(_CASSANDRA_LOGBACK)
        data = cfg.data("cassandra")
        data.mkdir(parents=True, exist_ok=True)
        return [
            str(java), f"-Xms{cfg.cassandra_heap}", f"-Xmx{cfg.cassandra_heap}",
            *_CASSANDRA_JVM_FLAGS, f"-javaagent:{jamm[0]}",
            # Every collection's pause, to a rotated file of its own (24 MiB at most): Cassandra's
            # own log names only pauses over 200 ms. bench/fanout.py reports those of each rate.
            f"-Xlog:gc:file={cfg.log('cassandra-gc')}:time,uptime:filecount=3,filesize=8m",
            f"-Dcassandra.config=file://{yaml_path}", f"-Dcassandra.storagedir={data}",
            f"-Dcassandra.logdir={cfg.state / 'logs'}", f"-Dlogback.configurationFile={logback}",
            "-Dcassandra-foreground=yes",
            # A single local node: nothing to gossip with, so don't wait ~8 s for gossip to settle.
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-cp", f"{lib}/*", "org.apache.cassandra.service.CassandraDaemon",
        ]

    return Service(
        name="cassandra", cfg=cfg, ready_timeout_s=240, stop_grace_s=60,
        ports=(cfg.cassandra_port, cfg.cassandra_storage_port), marker=str(yaml_path),
        prepare=prepare, probe=lambda: probes.cassandra("127.0.0.1", cfg.cassandra_port),
    )


def redis(cfg: StackConfig) -> Service:
    conf_path = cfg.conf("redis") / "redis.conf"

    def prepare() -> list[str]:
        server = find_redis_server()
        cfg.data("redis").mkdir(parents=True, exist_ok=True)
        conf_path.parent.mkdir(parents=True, exist_ok=True)
        conf_path.write_text(_redis_conf(cfg))
        return [str(server), str(conf_path)]

    return Service(
        name="redis", cfg=cfg, ready_timeout_s=20, stop_grace_s=10,
        ports=(cfg.redis_port,), marker=str(conf_path),
        prepare=prepare, probe=lambda: probes.redis(f"redis://127.0.0.1:{cfg.redis_port}/0"),
    )


def all_services(cfg: StackConfig) -> list[Service]:
    return [kafka(cfg), cassandra(cfg), redis(cfg)]


def min_heap(heap: str) -> str:
    """Start Kafka with half its maximum heap: it rarely needs it all on one node."""
    amount, unit = int(heap[:-1]), heap[-1]
    mib = amount * (1024 if unit == "g" else 1)
    return f"{max(mib // 2, 64)}m"


def _format_kafka_storage(jvm: list[str], props: Path, cfg: StackConfig) -> None:
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    cmd = [*jvm, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props), "--ignore-formatted"]
    cfg.log("kafka").parent.mkdir(parents=True, exist_ok=True)
    with cfg.log("kafka").open("ab") as log:
        result = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=180)
    if result.returncode != 0:
        raise StackError(f"formatting Kafka's KRaft storage failed; see {cfg.log('kafka')}")
    logging.getLogger(__name__).info("formatted Kafka storage, cluster id %s", cluster_id)


def _kafka_properties(cfg: StackConfig, data: Path) -> str:
    return f"""# Written by `starling stack up`; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cfg.kafka_controller_port}
listeners=PLAINTEXT://127.0.0.1:{cfg.kafka_port},CONTROLLER://127.0.0.1:{cfg.kafka_controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{cfg.kafka_port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data}
num.partitions=1
# Topics come from topology.yaml through `starling init`; faust creates its own internal topics.
auto.create.topics.enable=true
offsets.topic.replication.factor=1
# The default 50 partitions make the first consumer group's start slow on one node.
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
# 2 cores: a few threads are plenty and leave CPU for Cassandra and the workers.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
# The cleaner's default 128 MiB dedupe buffer is heap we don't have; faust changelogs are small.
log.cleaner.dedupe.buffer.size=16777216
log.cleaner.threads=1
unclean.leader.election.enable=false
"""


_KAFKA_LOG4J = """log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.controller=INFO
log4j.logger.org.apache.kafka.controller=INFO
"""


def _cassandra_yaml(cfg: StackConfig) -> str:
    return f"""# Written by `starling stack up`; edits are overwritten. One local node, loopback only.
cluster_name: 'starling-local'
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
commitlog_sync: periodic
commitlog_sync_period: 10000ms
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:{cfg.cassandra_storage_port}"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: {cfg.cassandra_storage_port}
native_transport_port: {cfg.cassandra_port}
start_native_transport: true
auto_snapshot: false
storage_compatibility_mode: NONE
# 2 cores: fewer threads than the defaults sized for 16-core servers.
concurrent_reads: 16
concurrent_writes: 16
concurrent_counter_writes: 4
concurrent_compactors: 1
compaction_throughput: 64MiB/s
"""


_CASSANDRA_LOGBACK = """<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level %date{ISO8601} %c{0} - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
"""

# From Cassandra 5.0's conf/jvm-server.options, jvm17-server.options and bin/cassandra.in.sh, but for
# the pause goal: 50 ms, not 300. With 300, G1 grew the young generation until its pauses neared
# it: at 700 tweets/s in bench/fanout.py, 12 pauses in 30 s, p50 188 ms, every request waiting them
# out; with 50, 11 in 20 s, p50 42 ms, the longest 81 (docs/ARCHITECTURE.md).
_CASSANDRA_JVM_FLAGS = [
    "-ea", "-da:net.openhft...", "-XX:+UseThreadPriorities", "-XX:+HeapDumpOnOutOfMemoryError",
    "-Xss256k", "-XX:+UseTLAB", "-XX:+ResizeTLAB", "-XX:+PerfDisableSharedMem",
    "-Djava.net.preferIPv4Stack=true", "-Dchronicle.analytics.disable=true",
    "-XX:+UseG1GC", "-XX:+ParallelRefProcEnabled", "-XX:MaxTenuringThreshold=1",
    "-XX:G1RSetUpdatingPauseTimePercent=5", "-XX:MaxGCPauseMillis=50",
    "-XX:InitiatingHeapOccupancyPercent=70", "-Djdk.attach.allowAttachSelf=true",
    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports", "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports", "java.management/com.sun.jmx.remote.security=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports", "java.sql/java.sql=ALL-UNNAMED",
    "--add-exports", "java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports", "jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-exports", "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-opens", "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.base/java.io=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/java.util=ALL-UNNAMED",
    "--add-opens", "java.base/java.nio=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true", "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
]


def _redis_conf(cfg: StackConfig) -> str:
    return f"""# Written by `starling stack up`; edits are overwritten.
port {cfg.redis_port}
bind 127.0.0.1
protected-mode yes
daemonize no
dir {cfg.data('redis')}
# A cache of views rebuilt from Cassandra (DESIGN.md decision 4): no persistence, and under memory
# pressure the least recently used keys go first instead of writes failing.
save ""
appendonly no
maxmemory {cfg.redis_maxmemory}
maxmemory-policy allkeys-lru
# Puts the config path into the process title so the launcher can tell its own server apart.
proc-title-template "{{title}} {{listen-addr}} {{config-file}}"
"""
