"""Moderation verdicts: the text model's fast path, rules, spam signals, the combiner, state (pure)."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.moderation import (
    AGGRAVATORS,
    SCORES,
    ZERO_WHEN_ABSENT,
    Action,
    AuthorHistories,
    AuthorHistory,
    ModerationConfig,
    ModerationConfigError,
    Moderator,
    Post,
    TermIndex,
    TextModel,
    Words,
    blocked_domain_of,
    combine,
    full_scores,
    link_host,
    normalize_domain,
    stored_scores,
)

# A one-fold toy model: P = sigmoid(w . tfidf - 1). One vocabulary word alone has a unit tf-idf
# vector, so "stupid" scores sigmoid(1) = 0.73 (label), "idiot" sigmoid(9) (hide), and a text
# without vocabulary words sigmoid(-1) = 0.27 (allow).
TOY = TextModel({"idiot": 0, "stupid": 1, "lovely": 2, "day": 3}, idf=[2.0, 1.5, 1.2, 1.0],
                coef=[[10.0, 2.0, -3.0, 0.1]], intercept=[-1.0], calibration=[(-1.0, 0.0)])
BASE = {"label_at": 0.5, "hide_at": 0.9, "block_at": 1.0, "sensitive_model_terms": 0}
T0 = 1_700_000_000_000  # event time of the first post, ms
MINUTE = 60_000


def moderator(**overrides: object) -> Moderator:
    return Moderator(ModerationConfig(**{**BASE, **overrides}), TOY)  # type: ignore[arg-type]


def post(tweet_id: int, text: str, at_ms: int = T0, author: int = 1, created: int | None = None) -> Post:
    return Post(tweet_id, author, text, at_ms, created)


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# -- the text model ------------------------------------------------------------------------------

def test_toy_model_follows_the_formula():
    assert TOY.score("stupid") == pytest.approx(sigmoid(1.0))
    assert TOY.score("IDIOT!") == pytest.approx(sigmoid(9.0))
    assert TOY.score("hello there") == pytest.approx(sigmoid(-1.0))
    assert TOY.score("") == pytest.approx(sigmoid(-1.0))
    # Two words: counts * idf, L2-normalized, then the dot product.
    x = [2.0 * 2, 1.5]  # "idiot idiot stupid"
    norm = math.hypot(*x)
    assert TOY.score("idiot idiot stupid") == pytest.approx(sigmoid((x[0] * 10 + x[1] * 2) / norm - 1))


words = st.sampled_from(["idiot", "stupid", "lovely", "day", "Day", "x", "hello", "", "#day", "@idiot"])
texts = st.lists(words, max_size=12).map(" ".join)


@given(st.lists(texts, max_size=20))
def test_batch_scores_equal_single_scores(batch):
    assert TOY.score_batch(batch) == pytest.approx([TOY.score(t) for t in batch], abs=1e-12)


@pytest.fixture(scope="module")
def packaged() -> TextModel:
    return TextModel.packaged()


SAMPLES = ["you are a stupid idiot", "have a lovely day", "what the f*ck is this", "", "@USER URL #MAGA",
           "This is the WORST take I've ever read, you moron", "Thanks for the follow! 🙂", "kill yourself loser"]


def test_packaged_model_equals_alt_profanity_check(packaged):
    from profanity_check import predict_prob

    expected = [float(p) for p in predict_prob(SAMPLES)]
    assert [packaged.score(t) for t in SAMPLES] == pytest.approx(expected, abs=1e-9)
    assert packaged.score_batch(SAMPLES) == pytest.approx(expected, abs=1e-9)
    assert packaged.score("you are a stupid idiot") > 0.9
    assert packaged.score("have a lovely day") < 0.1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz !?'#@", max_size=60) | st.sampled_from(SAMPLES),
                max_size=10))
def test_packaged_batch_equals_single(packaged, batch):
    assert packaged.score_batch(batch) == pytest.approx([packaged.score(t) for t in batch], abs=1e-12)


def test_top_terms_are_the_heaviest_positive_words(packaged):
    top = packaged.top_terms(20)
    weights = packaged.term_weights()
    assert len(top) == 20 and all(len(t) >= 3 and weights[t] > 0 for t in top)
    assert [weights[t] for t in top] == sorted((weights[t] for t in top), reverse=True)
    assert TOY.top_terms(10) == ("idiot", "stupid", "day")  # "lovely" weighs against


# -- blocked and sensitive terms -----------------------------------------------------------------

@pytest.mark.parametrize("text, found", [
    ("Buy cheap PILLS now", ["pills"]),
    ("pills, pills!", ["pills"]),
    ("p1lls", ["pills"]),  # digits for letters
    ("p!lls", ["pills"]),
    ("pill5", ["pills"]),
    ("ṗills", []),  # a different letter, not a disguise
    ("p.i.l.l.s", ["pills"]),  # separators
    ("p-i-l-l-s", ["pills"]),
    ("p*lls", ["pills"]),  # a masked letter
    ("p**ls", ["pills"]),
    ("***", []),
    ("piiiilllls", ["pills"]),  # stretched
    ("pils", []),  # shorter than the term is another word
    ("pіlls", ["pills"]),  # Cyrillic і
    ("p\u200bills", ["pills"]),  # zero-width space
    ("ＰＩＬＬＳ", ["pills"]),  # fullwidth
    ("spills", []),  # word-bounded
    ("pillsbury", []),
    ("@pills hello", []),  # a handle is not a word
    ("see https://pills.example/pills", []),  # nor is a link
    ("#pills", ["pills"]),
    ("go kill yourself", ["kill yourself"]),
    ("K1LL   YOUR-SELF", ["kill yourself"]),
    ("kill your friends", []),
    ("yourself kill", []),
    ("pills and kill yourself pills", ["pills", "kill yourself"]),
])
def test_blocked_terms(text, found):
    verdict = moderator(blocked_terms=("pills", "Kill yourself")).moderate(post(1, text))
    assert [e.removeprefix("blocked_term:") for e in verdict.evidence] == found
    assert (verdict.action, verdict.reasons[:1]) == ((Action.BLOCK, ("blocked_term",)) if found else (Action.ALLOW, ()))
    assert verdict.scores["blocked_term"] == len(found)


def test_digits_alone_are_not_disguised_letters():
    assert TermIndex.build(["ass"]).find(Words.of("call 455 now")) == []
    assert TermIndex.build(["ass"]).find(Words.of("a$$ 4ss")) == ["ass"]
    assert TermIndex.build(["ass"]).find(Words.of("as")) == []


def test_sensitive_terms_label():
    verdict = moderator(sensitive_terms=("nsfw",)).moderate(post(1, "NSFW pics"))
    assert (verdict.action, verdict.reasons, verdict.evidence) == (Action.LABEL, ("sensitive_term",),
                                                                    ("sensitive_term:nsfw",))


def test_the_models_top_words_label_a_diluted_insult():
    long = "idiot " + " ".join(["lovely day"] * 20)
    assert TOY.score(long) < 0.5
    assert moderator().moderate(post(1, long)).action == Action.ALLOW
    verdict = moderator(sensitive_model_terms=1).moderate(post(1, long))
    assert (verdict.action, verdict.evidence) == (Action.LABEL, ("sensitive_term:idiot",))


plain_words = st.text(alphabet="abcdefghij", min_size=1, max_size=8)


@given(plain_words, st.lists(plain_words, max_size=6), st.lists(plain_words, max_size=6), st.booleans())
def test_a_term_between_any_words_is_found_in_any_case(term, before, after, upper):
    typed = term.upper() if upper else term
    text = " ".join([*before, typed, *after])
    assert term in TermIndex.build([term]).find(Words.of(text))


# -- blocked domains -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, blocked", [
    ("see https://evil.com/x", True),
    ("see http://EVIL.com", True),
    ("see https://www.evil.com/a?b=1", True),
    ("see http://a.b.evil.com:8080/", True),
    ("see https://evil.com.", True),
    ("see https://notevil.com/", False),
    ("see https://evil.com.example.org/", False),
    ("see https://evil.co/", False),
    ("see evil.com", False),  # no scheme: no link (pipeline/entities.py)
    ("nothing here", False),
])
def test_blocked_domains_cover_subdomains(text, blocked):
    for rule in ("evil.com", "*.evil.com", " EVIL.COM. "):
        verdict = moderator(blocked_domains=(rule,)).moderate(post(1, text))
        assert (verdict.action == Action.BLOCK) is blocked
        assert verdict.evidence == (("blocked_domain:evil.com",) if blocked else ())


labels = st.text(alphabet="abcxyz0-", min_size=1, max_size=6).filter(lambda s: s[0] != "-" and s[-1] != "-")


@given(st.lists(labels, min_size=1, max_size=3), st.lists(labels, max_size=3), labels)
def test_a_host_is_blocked_exactly_when_under_the_domain(domain, sub, other):
    rule = ".".join(domain)
    rules = frozenset({normalize_domain(rule)})
    assert blocked_domain_of(".".join([*sub, *domain]), rules) == rule
    assert blocked_domain_of(other + rule, rules) is None or other + rule == rule


def test_link_host():
    assert link_host("https://Sub.Example.COM:443/path?q#f") == "sub.example.com"
    assert link_host("http://example.com") == "example.com"


# -- spam signals ---------------------------------------------------------------------------------

SPAM = "Earn money fast from home, click the link below"
SPAM_CONFIG = {"duplicate_window_s": 3600, "duplicate_hide_at": 2, "duplicate_block_at": 3}


def test_a_repeated_text_is_hidden_then_blocked_within_the_window():
    mod = moderator(**SPAM_CONFIG)
    actions = [mod.moderate(post(i, SPAM, T0 + i * MINUTE)).action for i in range(1, 5)]
    assert actions == [Action.ALLOW, Action.HIDE, Action.BLOCK, Action.BLOCK]
    assert mod.moderate(post(9, SPAM, T0 + 9 * MINUTE)).reasons[0] == "duplicate_text"


def test_variations_in_case_punctuation_mentions_and_links_are_still_duplicates():
    mod = moderator(**SPAM_CONFIG)
    mod.moderate(post(1, f"@alice {SPAM} https://a.example/1"))
    verdict = mod.moderate(post(2, f"@bob {SPAM.upper()}!!! https://b.example/2", T0 + 1))
    assert (verdict.action, verdict.scores["duplicate_text"]) == (Action.HIDE, 2)


@pytest.mark.parametrize("gap_ms, action", [(3600_000 - 1, Action.HIDE), (3600_000, Action.ALLOW),
                                            (86_400_000, Action.ALLOW)])
def test_duplicate_window_boundary(gap_ms, action):
    mod = moderator(**SPAM_CONFIG)
    mod.moderate(post(1, SPAM))
    assert mod.moderate(post(2, SPAM, T0 + gap_ms)).action == action


def test_short_texts_and_other_authors_are_not_duplicates():
    mod = moderator(**SPAM_CONFIG, duplicate_min_chars=20)
    assert [mod.moderate(post(i, "good morning!", T0 + i)).action for i in range(1, 4)] == [Action.ALLOW] * 3
    assert [mod.moderate(post(10 + a, SPAM, T0, author=a)).action for a in range(5)] == [Action.ALLOW] * 5


def test_a_burst_is_hidden_and_a_steady_pace_is_not():
    mod = moderator(burst_window_s=60, burst_at=5, history_max=8)
    burst = [mod.moderate(post(i, f"update number {i}", T0 + i * 1000)).action for i in range(1, 7)]
    assert burst == [Action.ALLOW] * 4 + [Action.HIDE] * 2
    mod = moderator(burst_window_s=60, burst_at=5, history_max=8)
    steady = [mod.moderate(post(i, f"update number {i}", T0 + i * 15_001)).action for i in range(1, 20)]
    assert steady == [Action.ALLOW] * 19


@pytest.mark.parametrize("handles, action", [(9, Action.ALLOW), (10, Action.HIDE), (30, Action.HIDE)])
def test_mention_stuffing(handles, action):
    text = " ".join(f"@user{i}" for i in range(handles)) + " check this out"
    verdict = moderator(mention_stuffing_at=10).moderate(post(1, text))
    assert (verdict.action, verdict.scores["mention_stuffing"]) == (action, handles)


def test_the_same_mention_repeated_counts_once():
    verdict = moderator(mention_stuffing_at=3).moderate(post(1, "@a @a @A @a @a hi"))
    assert (verdict.action, verdict.scores["mention_stuffing"]) == (Action.ALLOW, 1)


@pytest.mark.parametrize("tags, action", [(7, Action.ALLOW), (8, Action.HIDE)])
def test_hashtag_stuffing(tags, action):
    text = "win big " + " ".join(f"#tag{i}" for i in range(tags)) + " #TAG0 #Tag1"  # case variants: same key
    verdict = moderator(hashtag_stuffing_at=8).moderate(post(1, text))
    assert (verdict.action, verdict.scores["hashtag_stuffing"]) == (action, tags)
    assert verdict.reasons == (("hashtag_stuffing",) if action == Action.HIDE else ())


@given(st.integers(0, 40), st.integers(1, 40))
def test_stuffing_fires_exactly_at_the_threshold(count, at):
    text = " ".join(f"#t{i}x" for i in range(count))
    assert (moderator(hashtag_stuffing_at=at).moderate(post(1, text)).action == Action.HIDE) is (count >= at)


# -- aggravators: new accounts and repeat offenders ------------------------------------------------

DAY = 86_400_000


@pytest.mark.parametrize("age_ms, text, action, reasons", [
    (DAY - 1, "stupid", Action.HIDE, ("offensive_text", "new_account")),
    (DAY, "stupid", Action.LABEL, ("offensive_text",)),
    (DAY - 1, "hello there", Action.ALLOW, ()),  # new alone is no reason
    (DAY - 1, "idiot", Action.HIDE, ("offensive_text",)),  # already hidden
    (None, "stupid", Action.LABEL, ("offensive_text",)),  # unknown age
])
def test_new_accounts_raise_a_label_to_hide(age_ms, text, action, reasons):
    created = None if age_ms is None else T0 - age_ms
    verdict = moderator(new_account_s=86_400).moderate(post(1, text, created=created))
    assert (verdict.action, verdict.reasons) == (action, reasons)
    assert ("new_account" in verdict.scores) is (age_ms is not None)


def offender(strikes: int, spacing_ms: int = MINUTE) -> Moderator:
    mod = moderator(offender_strikes=3, offender_window_s=3600)
    for i in range(strikes):
        assert mod.moderate(post(i + 1, f"idiot number {i}", T0 + i * spacing_ms)).action == Action.HIDE
    return mod


def test_repeat_offenders_borderline_tweets_are_hidden():
    assert offender(2).moderate(post(10, "stupid", T0 + 10 * MINUTE)).action == Action.LABEL
    verdict = offender(3).moderate(post(10, "stupid", T0 + 10 * MINUTE))
    assert (verdict.action, verdict.reasons, verdict.scores["repeat_offender"]) == (
        Action.HIDE, ("offensive_text", "repeat_offender"), 3)
    assert offender(3).moderate(post(10, "hello there", T0 + 10 * MINUTE)).action == Action.ALLOW


def test_old_strikes_expire():
    assert offender(3).moderate(post(10, "stupid", T0 + 2 * MINUTE + 3600_000)).action == Action.LABEL


def test_an_override_to_allow_clears_the_strike():
    mod = offender(3)
    mod.override(author_id=1, tweet_id=2, at_ms=T0 + MINUTE, action=Action.ALLOW)
    assert mod.moderate(post(10, "stupid", T0 + 10 * MINUTE)).action == Action.LABEL
    mod.override(author_id=1, tweet_id=2, at_ms=T0 + MINUTE, action=Action.BLOCK)
    assert mod.moderate(post(11, "stupid", T0 + 11 * MINUTE)).action == Action.HIDE


# -- the combiner ----------------------------------------------------------------------------------

SIGNALS = ["blocked_term", "blocked_domain", "offensive_text", "sensitive_term", "duplicate_text", "burst"]


@given(st.dictionaries(st.sampled_from(SIGNALS), st.sampled_from(list(Action))),
       st.lists(st.sampled_from(AGGRAVATORS), unique=True))
def test_combine_takes_the_most_severe_and_aggravators_raise_only_a_label(levels, aggravators):
    action, reasons = combine(levels, aggravators)
    worst = max(levels.values(), default=Action.ALLOW)
    assert action == (Action.HIDE if worst == Action.LABEL and aggravators else worst)
    fired = [s for s in reasons if s in levels]
    assert set(fired) == {s for s, lvl in levels.items() if lvl > Action.ALLOW}
    assert [levels[s] for s in fired] == sorted((levels[s] for s in fired), reverse=True)
    assert reasons[len(fired):] == (tuple(aggravators) if action != worst else ())


@pytest.mark.parametrize("text, action, reasons", [
    ("have a lovely day", Action.ALLOW, ()),
    ("stupid", Action.LABEL, ("offensive_text",)),
    ("idiot", Action.HIDE, ("offensive_text",)),
    ("idiot https://evil.com/", Action.BLOCK, ("blocked_domain", "offensive_text")),
    ("stupid pills", Action.BLOCK, ("blocked_term", "offensive_text")),
])
def test_verdicts_carry_every_reason_most_severe_first(text, action, reasons):
    verdict = moderator(blocked_terms=("pills",), blocked_domains=("evil.com",)).moderate(post(1, text))
    assert (verdict.action, verdict.reasons) == (action, reasons)
    assert set(verdict.scores) >= {"offensive_text", "blocked_term", "blocked_domain", "duplicate_text", "burst",
                                   "mention_stuffing", "hashtag_stuffing", "sensitive_term", "repeat_offender"}


def test_verdict_json():
    verdict = moderator().moderate(post(2**62 + 1, "stupid"))
    data = json.loads(json.dumps(verdict.to_json()))
    assert data["tweet_id"] == str(2**62 + 1) and data["action"] == "label" and data["reasons"] == ["offensive_text"]


def test_action_codes():
    assert [a.code for a in Action] == ["allow", "label", "hide", "block"]
    assert [a.delivered for a in Action] == [True, True, False, False]
    assert Action.parse("Hide") is Action.HIDE
    with pytest.raises(ValueError, match="unknown action"):
        Action.parse("delete")


# -- state: order, replays, bounds, snapshots ----------------------------------------------------

stream = st.lists(st.tuples(st.integers(1, 3), st.sampled_from([SPAM, "stupid", "idiot", "hello there", "#a #b #c"]),
                            st.integers(0, 120_000)), max_size=40)
CONFIG = {**SPAM_CONFIG, "burst_window_s": 60, "burst_at": 4, "history_max": 6, "hashtag_stuffing_at": 3,
          "offender_strikes": 2, "offender_window_s": 600}


def posts_of(events: list[tuple[int, str, int]]) -> list[Post]:
    at, out = T0, []
    for i, (author, text, gap) in enumerate(events):
        at += gap
        out.append(post(i + 1, text, at, author))
    return out


@given(stream)
def test_batch_moderation_equals_one_at_a_time(events):
    posts = posts_of(events)
    one, batch = moderator(**CONFIG), moderator(**CONFIG)
    singles = [one.moderate(p) for p in posts]
    batched = batch.moderate_batch(posts)
    assert [(v.action, v.reasons) for v in singles] == [(v.action, v.reasons) for v in batched]
    assert one.histories.snapshot() == batch.histories.snapshot()


@given(stream, st.integers(0, 40))
def test_a_replayed_suffix_gets_the_verdicts_it_got_first(events, start):
    """At-least-once: after a crash, everything after the last committed offset comes again."""
    posts = posts_of(events)
    mod = moderator(**CONFIG)
    first = [mod.moderate(p) for p in posts]
    last_at = {p.author_id: p.at_ms for p in posts}
    count = {a: sum(p.author_id == a for p in posts) for a in last_at}
    for p, verdict in list(zip(posts, first))[start:]:
        again = mod.moderate(p)
        # Guaranteed within the shortest window (burst, 60 s) of the author's latest tweet, while
        # no post was forgotten for the history_max cap.
        if last_at[p.author_id] - p.at_ms < 60_000 and count[p.author_id] <= CONFIG["history_max"]:
            assert (again.action, again.reasons, again.scores) == (verdict.action, verdict.reasons, verdict.scores)


def test_a_replay_still_sees_a_strike_that_left_the_window_of_a_later_tweet():
    mod = moderator(offender_strikes=1, offender_window_s=600)
    mod.moderate(post(1, "idiot", T0))  # hide: a strike
    first = mod.moderate(post(2, "stupid", T0 + 599_000))  # within 10 minutes of it
    mod.moderate(post(3, "hello there", T0 + 650_000))  # past them: the strike no longer counts
    assert first.action == mod.moderate(post(2, "stupid", T0 + 599_000)).action == Action.HIDE


@given(stream)
def test_snapshots_round_trip_through_json(events):
    posts = posts_of(events)
    half = len(posts) // 2
    mod = moderator(**CONFIG)
    for p in posts[:half]:
        mod.moderate(p)
    snapshot = json.loads(json.dumps(mod.histories.snapshot()))
    restored = Moderator(mod.config, TOY, AuthorHistories.restore(snapshot))
    assert restored.histories.snapshot() == mod.histories.snapshot()
    assert [restored.moderate(p) for p in posts[half:]] == [mod.moderate(p) for p in posts[half:]]


@given(stream)
def test_history_is_bounded_and_holds_only_what_a_window_can_use(events):
    mod = moderator(**CONFIG)
    for p in posts_of(events):
        mod.moderate(p)
        h = mod.histories.get(p.author_id)
        assert len(h.posts) <= CONFIG["history_max"] and len(h.strikes) <= CONFIG["history_max"]
        assert all(p.at_ms - at < 2 * 3600_000 for _, at, _ in h.posts)  # two duplicate windows
        assert [e[0] for e in h.posts] == sorted(e[0] for e in h.posts)


def test_authors_beyond_the_bound_are_forgotten_least_recent_first():
    histories = AuthorHistories(max_entries=4)  # two authors of one post each
    for author in (1, 2, 1, 3):
        histories.put(author, AuthorHistory(posts=((author, 0, ""),)))
    assert len(histories) == 2 and histories.get(2) == AuthorHistory()
    assert list(histories.snapshot()["authors"]) == ["1", "3"]
    assert 2 not in histories and histories.entries == 4


def test_the_bound_counts_entries_so_a_long_history_makes_room_by_itself():
    histories = AuthorHistories(max_entries=10)
    for author in (1, 2, 3, 4, 5):
        histories.put(author, AuthorHistory(posts=((author, 0, ""),)))
    assert len(histories) == 5 and histories.entries == 10
    # Author 6 with four posts and a strike (6 entries) pushes out the three least recent.
    histories.put(6, AuthorHistory(posts=tuple((i, 0, "") for i in range(4)), strikes=((9, 0, 3),)))
    assert list(histories.snapshot()["authors"]) == ["4", "5", "6"] and histories.entries == 10
    # One author alone over the bound is kept (history_max bounds a history), the rest go.
    histories.put(7, AuthorHistory(posts=tuple((i, 0, "") for i in range(12))))
    assert list(histories.snapshot()["authors"]) == ["7"] and histories.entries == 13


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 30), st.lists(st.tuples(st.integers(0, 6), st.integers(0, 5), st.integers(0, 3)), max_size=60))
def test_the_entry_count_matches_what_is_kept_and_stays_within_the_bound(bound, puts):
    histories = AuthorHistories(max_entries=bound)
    for author, posts, strikes in puts:
        histories.put(author, AuthorHistory(posts=tuple((i, 0, "") for i in range(posts)),
                                            strikes=tuple((i, 0, 3) for i in range(strikes))))
        kept = histories.snapshot()["authors"]
        assert histories.entries == sum(1 + len(h["posts"]) + len(h["strikes"]) for h in kept.values())
        assert histories.entries <= bound or len(kept) == 1
        assert list(kept)[-1] == str(author)  # the author just put is the most recent, and kept
    histories.clear()
    assert len(histories) == 0 and histories.entries == 0


def test_author_history_json_round_trip():
    h = AuthorHistory(posts=((1, 5, "ab"), (2, 6, "")), strikes=((1, 5, int(Action.HIDE)),))
    assert AuthorHistory.from_json(json.loads(json.dumps(h.to_json()))) == h
    assert AuthorHistory.from_json(None) == AuthorHistory()


def test_assess_is_pure():
    mod = moderator(**SPAM_CONFIG)
    empty = AuthorHistory()
    verdict, after = mod.assess(post(1, SPAM), 0.1, empty)
    assert empty == AuthorHistory() and len(mod.histories) == 0
    again, _ = mod.assess(post(2, SPAM, T0 + 1), 0.1, after)
    assert (verdict.action, again.action) == (Action.ALLOW, Action.HIDE)


# -- config ----------------------------------------------------------------------------------------

def test_defaults_are_valid_and_a_mapping_overrides_them():
    config = ModerationConfig.from_mapping({"label_at": 0.5, "hide_at": 0.8, "blocked_domains": ["evil.com"],
                                            "burst_at": 12.0, "blocked_terms": ["kill yourself"]})
    assert (config.label_at, config.burst_at, config.blocked_domains) == (0.5, 12, ("evil.com",))
    assert isinstance(config.burst_at, int)
    assert ModerationConfig.from_mapping({}) == ModerationConfig()


@pytest.mark.parametrize("mapping, key, problem", [
    ({"label_treshold": 0.5}, "tunables.moderation.label_treshold", "not a moderation tunable"),
    ({"label_at": "high"}, "tunables.moderation.label_at", "must be a number"),
    ({"label_at": True}, "tunables.moderation.label_at", "must be a number"),
    ({"label_at": 1.5}, "tunables.moderation.label_at", r"must be in \(0, 1\]"),
    ({"label_at": 0}, "tunables.moderation.label_at", r"must be in \(0, 1\]"),
    ({"label_at": 0.95, "hide_at": 0.9}, "tunables.moderation.hide_at", "between label_at and block_at"),
    ({"burst_at": 2.5}, "tunables.moderation.burst_at", "whole number"),
    ({"burst_at": 1}, "tunables.moderation.burst_at", "at least 2"),
    ({"burst_at": 40}, "tunables.moderation.history_max", "at least 40"),
    ({"duplicate_hide_at": 3, "duplicate_block_at": 2}, "tunables.moderation.duplicate_block_at", "at least 3"),
    ({"duplicate_window_s": 0}, "tunables.moderation.duplicate_window_s", "at least 1"),
    ({"blocked_terms": "spam"}, "tunables.moderation.blocked_terms", "list of strings"),
    ({"blocked_terms": ["ok", 3]}, "tunables.moderation.blocked_terms", "non-empty strings"),
    ({"blocked_terms": ["!!!"]}, "tunables.moderation.blocked_terms", "no letters or digits"),
    ({"blocked_domains": ["https://evil.com/x"]}, "tunables.moderation.blocked_domains", "not a domain"),
    ({"blocked_domains": ["a..b"]}, "tunables.moderation.blocked_domains", "not a domain"),
    ({"history_entries": 0}, "tunables.moderation.history_entries", "at least 1"),
])
def test_config_errors_name_the_key(mapping, key, problem):
    with pytest.raises(ModerationConfigError, match=problem) as err:
        ModerationConfig.from_mapping(mapping)
    assert err.value.key == key and str(err.value).startswith(key)


def test_config_must_be_a_mapping():
    with pytest.raises(ModerationConfigError, match="must be a mapping"):
        ModerationConfig.from_mapping(["label_at"])  # type: ignore[arg-type]


_score_values = st.one_of(st.just(0.0), st.floats(min_value=0, max_value=1e6, allow_nan=False))


@given(st.fixed_dictionaries({k: _score_values for k in ZERO_WHEN_ABSENT},
                             optional={"new_account": _score_values}))
def test_stored_scores_drop_only_zeros_that_reading_puts_back(scores):
    """A model verdict's row keeps its non-zero scores; reading it back gives every score again,
    and an account age of 0 s stays known (new_account is absent only when unknown)."""
    kept = stored_scores(scores)
    assert full_scores(kept) == scores
    assert all(v != 0 for k, v in kept.items() if k != "new_account")
    assert ("new_account" in kept) == ("new_account" in scores)
    assert set(ZERO_WHEN_ABSENT) | {"new_account"} == set(SCORES)


def test_full_scores_leave_a_complete_map_as_it_is():
    """Rows written before stored_scores hold every score, zeros included."""
    every = {k: float(i) for i, k in enumerate(ZERO_WHEN_ABSENT)}
    assert full_scores(every) == every
