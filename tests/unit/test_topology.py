"""topology.yaml: the shipped file is consistent, and inconsistent ones are refused."""

import copy

import pytest
import yaml

from pipeline.errors import TopologyError
from pipeline.events import Contracts
from pipeline.routing import KEY_FIELD
from pipeline.settings import Settings
from pipeline.topology import load_topology, parse_topology

RAW = yaml.safe_load(Settings.from_env({}).topology_path.read_text())


def test_shipped_topology_loads_and_matches_the_event_schemas():
    topo = load_topology(Settings.from_env({}).topology_path)
    contracts = Contracts()
    assert topo.event_types == contracts.event_types, "every schema has a topic and vice versa"
    assert set(KEY_FIELD) == contracts.event_types, "every event type has a partition key rule"
    assert topo.tunables.timeline_cap == 800
    for agent in topo.agents.values():
        assert agent.consumes in topo.topics


def test_event_type_on_two_topics_is_refused():
    raw = copy.deepcopy(RAW)
    raw["topics"]["ingest.users"]["events"].append("tweet.created")
    with pytest.raises(TopologyError, match="tweet.created"):
        parse_topology(raw)


def test_forwarded_types_are_accepted_without_moving_their_home_topic():
    topo = parse_topology(copy.deepcopy(RAW))
    moderated = topo.topics["tweets.moderated"]
    assert moderated.internal and not topo.topics["ingest.tweets"].internal
    assert {"tweets.forwarded", "tweet.created", "tweet.deleted", "tweet.moderated"} == moderated.accepted
    assert topo.topic_for_event("tweets.forwarded").name == "tweets.moderated", "the packed records"
    assert topo.topic_for_event("tweet.created").name == "ingest.tweets", "producers still send to ingest"
    assert topo.topic_for_event("tweet.moderated").name == "verdicts"
    assert topo.agents["fanout"].consumes == "tweets.moderated", "fan-out reads only what moderation let through"
    assert topo.agents["moderation"].consumes == "ingest.tweets"


def test_forwarding_an_unknown_type_is_refused():
    raw = copy.deepcopy(RAW)
    raw["topics"]["tweets.moderated"]["forwards"].append("tweet.liked")
    with pytest.raises(TopologyError, match="tweet.liked"):
        parse_topology(raw)


def test_moderation_tunables_are_checked_with_their_key():
    raw = copy.deepcopy(RAW)
    raw["tunables"]["moderation"]["label_at"] = 1.5
    with pytest.raises(ValueError, match="tunables.moderation.label_at"):
        parse_topology(raw)


def test_agent_on_unknown_topic_is_refused():
    raw = copy.deepcopy(RAW)
    raw["agents"]["fanout"]["consumes"] = "nope"
    with pytest.raises(TopologyError, match="nope"):
        parse_topology(raw)


def test_two_agents_on_one_topic_are_refused():
    raw = copy.deepcopy(RAW)
    raw["agents"]["notify_tweets"] = {"consumes": "tweets.moderated", "writes": ["cassandra.notifications"]}
    with pytest.raises(TopologyError, match="both consume"):
        parse_topology(raw)


@pytest.mark.parametrize("path, value", [
    (("topics", "ingest.tweets", "partitions"), 0),
    (("topics", "ingest.tweets", "cleanup"), "forever"),
    (("tunables", "timeline_cap"), -1),
    (("tunables", "fetch_max_wait_ms"), 0),
    (("tunables", "fetch_max_wait_ms"), 0.5),
    (("version",), 2),
    (("agents", "moderation", "batches_in_flight"), 0),
    (("agents", "moderation", "batches_in_flight"), "2"),
    (("agents", "fanout", "batches_in_flight"), True),
    (("agents", "graph", "batches_in_flight"), 2),
])
def test_bad_values_are_refused(path, value):
    raw = copy.deepcopy(RAW)
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(TopologyError):
        parse_topology(raw)


def test_topic_for_event():
    topo = parse_topology(RAW)
    assert topo.topic_for_event("follow.removed").name == "ingest.follows"
    with pytest.raises(TopologyError):
        topo.topic_for_event("nope.nope")


def test_overrides_replace_dotted_paths_without_touching_the_original():
    from pipeline.topology import with_overrides

    out = with_overrides(RAW, {"api.produce_timeout_ms": 1500, "tunables.fanout.push_all_below": 3})
    assert out["api"]["produce_timeout_ms"] == 1500 and out["tunables"]["fanout"]["push_all_below"] == 3
    assert RAW["api"]["produce_timeout_ms"] == 5000
    parse_topology(out)


def test_trending_partitions_merge_into_one_top_k():
    """Each tag lives in one partition, so the worldwide top K is the top K of their lists."""
    from agents.trending import merge

    def t(tag, score):
        return {"tag": tag, "score": score}

    merged = merge([{"global|5m": [t("a", 9.0), t("b", 5.0)], "FR|5m": [t("a", 9.0)]},
                    {"global|5m": [t("c", 7.0), t("d", 1.0)]}], k=3)
    assert [x["tag"] for x in merged["global|5m"]] == ["a", "c", "b"]
    assert [x["tag"] for x in merged["FR|5m"]] == ["a"]


def test_only_moderation_and_fanout_run_two_batch_loops():
    # run_by_partition keeps a partition in one batch at a time, so order holds per partition.
    # Moderation's state is per author, the key of ingest.tweets; fan-out's order (a tweet's
    # creation, deletion, withdrawal) is per author, and an author's events are packed into the
    # partition their id maps to (pipeline/forwarding.py); the other agents keep one batch at a time.
    topo = parse_topology(RAW)
    assert {a.name: a.batches_in_flight for a in topo.agents.values() if a.batches_in_flight > 1} == \
        {"moderation": 2, "fanout": 2}
    assert topo.topics[topo.agents["moderation"].consumes].key == "author_id"
    assert topo.topics[topo.agents["fanout"].consumes].key == "partition"
