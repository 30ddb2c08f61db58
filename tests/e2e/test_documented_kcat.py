"""docs/EVENTS.md's kcat walkthrough, run as written (into the test namespace), is processed; its
malformed record lands in the dead-letter topic, and `starling dlq` reports it."""

import re
import subprocess
import sys

import orjson

from pipeline.settings import project_root
from tests.e2e.helpers import eventually

DOC = (project_root() / "docs" / "EVENTS.md").read_text()
BLOCKS = [b for b in re.findall(r"```bash\n(.*?)```", DOC, re.S) if "kcat -P" in b]


def test_the_walkthrough_has_the_documented_steps():
    assert len(BLOCKS) == 7
    assert all("-X partitioner=murmur2_random" in b for b in BLOCKS)


async def test_kcat_walkthrough_is_processed(running, cass, test_env):
    for block in BLOCKS:
        script = block.replace("-b 127.0.0.1:9092", f"-b {running.kafka_bootstrap}")
        script = re.sub(r"-t (\S+)", lambda m: f"-t {running.topic(m.group(1))}", script)
        subprocess.run(["bash", "-euo", "pipefail", "-c", script], check=True, timeout=60)

    await eventually(lambda: cass.existing_users([1001, 1002]), lambda u: u == {1001, 1002}, what="users")
    await eventually(lambda: cass.following(1001), lambda f: 1002 in f, what="follow")
    tweets = await eventually(lambda: cass.get_tweets([2001]), lambda t: 2001 in t, what="tweet")
    assert tweets[2001].author_id == 1002
    await eventually(lambda: cass.liked_by(2001), lambda u: 1001 in u, what="like")

    out = await eventually(lambda: _dlq(test_env), lambda r: r["by_reason"].get("malformed_json"),
                           what="malformed record in the dead-letter topic")
    sample = out["samples"]["malformed_json"][0]
    assert sample["key"] == "1002" and sample["value"].startswith("{not json")
    assert sample["source"].startswith(running.topic("ingest.tweets") + "[")


async def _dlq(env):
    proc = subprocess.run([sys.executable, "-m", "starling", "dlq", "--json"], env=env,
                          capture_output=True, timeout=60, check=True)
    return orjson.loads(proc.stdout)
