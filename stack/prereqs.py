"""Finding what the local stack needs on the machine (JDK 17, Maven, redis-server) or saying what is missing."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from stack.errors import StackError

# Cassandra 5.0 runs only on JDK 11 or 17: on JDK 24+ System.setSecurityManager throws, and no
# Cassandra release supports 18-23. The machine also has a newer Temurin, so the choice is explicit.
_JDK17_GLOBS = ("/usr/lib/jvm/java-17-openjdk*/bin/java", "/usr/lib/jvm/*-17*/bin/java", "/usr/lib/jvm/*17*/bin/java")


def java_major(java: Path) -> int | None:
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.stderr.splitlines():
        if "version" in line and '"' in line:
            version = line.split('"')[1]
            head = version.split(".")[0]
            return int(version.split(".")[1]) if head == "1" else int(head)
    return None


def find_java17(env: Mapping[str, str]) -> Path:
    explicit = env.get("STARLING_JAVA17")
    if explicit:
        path = Path(explicit)
        if path.is_dir():
            path = path / "bin" / "java"
        if java_major(path) != 17:
            raise StackError(f"STARLING_JAVA17={explicit} is not a JDK 17 java binary")
        return path
    for pattern in _JDK17_GLOBS:
        for candidate in sorted(glob.glob(pattern)):
            if java_major(Path(candidate)) == 17:
                return Path(candidate)
    raise StackError(
        "no JDK 17 found under /usr/lib/jvm: Cassandra 5.0 runs only on JDK 11 or 17. "
        "Install it (apt-get install openjdk-17-jdk-headless) or set STARLING_JAVA17=/path/to/java"
    )


def find_redis_server() -> Path:
    found = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if not found:
        raise StackError("redis-server not found: install it (apt-get install redis-server)")
    return Path(found)


def resolve_classpath(name: str, pom: Path, lib_dir: Path, log_file: Path) -> Path:
    """Copy the runtime classpath of `pom` into `lib_dir`, once: a second call downloads nothing.

    Maven keeps every jar in ~/.m2 as well, so a fresh checkout on the same machine resolves
    offline; the marker holds the pom's hash so a version bump resolves again.
    """
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    marker = lib_dir / ".resolved"
    if marker.is_file() and marker.read_text().strip() == digest:
        return lib_dir
    mvn = shutil.which("mvn")
    if not mvn:
        raise StackError(f"mvn not found: it fetches {name} from Maven Central (apt-get install maven)")
    lib_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=lib_dir.parent))
    cmd = [
        mvn, "-B", "-q", "-f", str(pom),
        "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies",
        f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
    ]
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        result = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0 or not any(staging.glob("*.jar")):
        shutil.rmtree(staging, ignore_errors=True)
        raise StackError(
            f"downloading {name} from Maven Central failed (mvn exit {result.returncode}); see {log_file}"
        )
    shutil.rmtree(lib_dir, ignore_errors=True)
    staging.rename(lib_dir)
    marker.write_text(digest + "\n")
    return lib_dir
