"""Moderation verdicts (DESIGN.md decision 11): allow, label, hide or block, with reasons and scores.

Every signal is computed, then the combiner takes the most severe level any of them reached:

    signal            fires when                                                  level
    blocked_term      a configured term or phrase, word-bounded, de-obfuscated     block
    blocked_domain    a link's host is a configured domain or one of its subdomains block
    offensive_text    packaged model score >= label_at / hide_at / block_at         label / hide / block
    sensitive_term    a configured sensitive term, or one of the model's heaviest  label
                      sensitive_model_terms words (matched like blocked_term)
    duplicate_text    the author's earlier copies of this normalized text in the   hide (2nd copy) /
                      duplicate window                                            block (3rd copy)
    burst             the author's posts in the burst window reach burst_at        hide
    mention_stuffing  distinct @mentions reach mention_stuffing_at                 hide
    hashtag_stuffing  distinct hashtags reach hashtag_stuffing_at                  hide
    new_account       the account is younger than new_account_s        } aggravators: raise a
    repeat_offender   the author's hide/block verdicts in the offender } label to hide
                      window reach offender_strikes                    }

Windows look back from the tweet's own event time and never at the clock:

        ─────────────[────────── window_ms ──────────)●  now: the judged tweet's time
         older: ignored   earlier posts counted: now - at < window_ms

Only posts with a smaller tweet id than the one judged count (snowflakes are time-ordered), so a
replayed tweet meets the history it met the first time, not its own earlier pass. Histories keep
two windows' worth (capped by history_max), so a tweet replayed less than one window after its
author's latest gets its first verdict again: idempotent under at-least-once delivery.

The text model is alt-profanity-check's (TF-IDF + 5 calibrated LinearSVC folds, MIT). scikit-learn
spends about 5 ms of input checks per call, so its fitted weights are read once into plain tables:
one tweet costs a tokenization and a few dictionary lookups (`TextModel.score`), and a list of
tweets is scored with numpy in one call (`TextModel.score_batch`). Nothing is downloaded.
"""

from __future__ import annotations

import enum
import hashlib
import importlib
import math
import operator
import re
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.entities import Entities, extract
from pipeline.errors import StarlingError


class Action(enum.IntEnum):
    """A verdict, ordered by severity so that combining is taking the maximum."""

    ALLOW = 0  # delivered as is
    LABEL = 1  # delivered with a "sensitive" label
    HIDE = 2  # held back until a moderator reviews it
    BLOCK = 3  # never delivered

    @property
    def code(self) -> str:
        return self.name.lower()

    @property
    def delivered(self) -> bool:
        """Fan-out, trending and notifications see the tweet (a labelled one with its label)."""
        return self <= Action.LABEL

    @classmethod
    def parse(cls, code: str) -> Action:
        try:
            return cls[code.upper()]
        except KeyError:
            raise ValueError(f"unknown action {code!r}; expected one of allow, label, hide, block") from None


class ModerationConfigError(StarlingError, ValueError):
    """A moderation tunable is unknown or malformed; names the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key} {problem}")
        self.key = key


@dataclass(frozen=True)
class ModerationConfig:
    """The tunables of moderation (topology.yaml `tunables.moderation`); the reason beside each."""

    # Model thresholds, tuned on the OLID training file only by bench/moderation_eval.py: label
    # at the best training macro-F1 whose false-positive rate stays <= 5%, hide where 9 in 10
    # training tweets above are offensive. block_at 1.0: the model alone never blocks, since a
    # classifier that calls some plain tweets offensive must leave the last word to a moderator.
    label_at: float = 0.53
    hide_at: float = 0.93
    block_at: float = 1.0
    # Policy lists, empty by default: what to block is the operator's decision, not the code's.
    blocked_terms: tuple[str, ...] = ()
    sensitive_terms: tuple[str, ...] = ()
    blocked_domains: tuple[str, ...] = ()
    # Also label a text holding one of the N words the packaged model weighs most offensive
    # (matched like sensitive_terms, so "a$$" too): one insult in a long tweet is diluted in
    # the model's normalized score but not here. N tuned like the thresholds; 0 turns it off.
    sensitive_model_terms: int = 50
    # A scheduled spam bot re-posts within hours; a daily greeting comes 24 h apart.
    duplicate_window_s: int = 21_600
    duplicate_hide_at: int = 2  # the first repeat (Twitter's API refused it: "Status is a duplicate")
    duplicate_block_at: int = 3
    # Short reactions ("lol", "thank you!") repeat innocently; only longer texts are compared.
    duplicate_min_chars: int = 20
    # Twitter's composer posts a thread of up to 25 tweets at once; 30 within 5 minutes is beyond
    # that and beyond typing speed.
    burst_window_s: int = 300
    burst_at: int = 30
    # Replies prefill the conversation's participants; 10 distinct handles is past a group chat.
    mention_stuffing_at: int = 10
    # Stuffing rides every trend at once. Tuned on the OLID training file as the smallest count
    # that fires on at most 1% of its plain tweets (a hashtag-heavy political sample).
    hashtag_stuffing_at: int = 9
    new_account_s: int = 86_400  # accounts younger than a day (0: never "new")
    offender_window_s: int = 604_800  # a week of record
    offender_strikes: int = 3
    # Memory bounds: posts and strikes remembered per author (at least burst_at), and entries
    # remembered per process, an author counting 1 plus their posts and strikes (least recently
    # active authors forgotten first). Bounded by entries, not authors: a history costs 180-210
    # bytes an entry whatever its length (tracemalloc, with the LRU's own dict: 408 bytes for one
    # post, 11.5 KB for 32 posts and 32 strikes), so 1,000,000 entries are ~180-210 MB at most,
    # which is 15,000 authors of full histories or 500,000 of one post each.
    # A bound on authors (20,000, 220 MB at worst) had to be sized for full histories and so held
    # a twentieth of the authors it had room for in the usual case.
    history_max: int = 32
    history_entries: int = 1_000_000

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], where: str = "tunables.moderation") -> ModerationConfig:
        """A config from YAML-shaped data; missing keys take defaults, unknown keys are errors."""
        if not isinstance(mapping, Mapping):
            raise ModerationConfigError(where, f"must be a mapping, got {type(mapping).__name__}")
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in mapping.items():
            name = f"{where}.{key}"
            if key not in known:
                raise ModerationConfigError(name, f"is not a moderation tunable (known: {', '.join(known)})")
            values[key] = _coerce(name, value, type(getattr(_DEFAULTS, key)))
        try:
            return cls(**values)
        except ModerationConfigError as e:
            raise ModerationConfigError(f"{where}.{e.key}", str(e).removeprefix(e.key).strip()) from None


def _coerce(name: str, value: Any, kind: type) -> Any:
    if kind is tuple:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ModerationConfigError(name, f"must be a list of strings, got {value!r}")
        if not all(isinstance(v, str) and v.strip() for v in value):
            raise ModerationConfigError(name, f"must hold non-empty strings, got {value!r}")
        return tuple(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModerationConfigError(name, f"must be a number, got {value!r}")
    if kind is int and not (isinstance(value, int) or float(value).is_integer()):
        raise ModerationConfigError(name, f"must be a whole number, got {value!r}")
    return int(value) if kind is int else float(value)


def _validate(c: ModerationConfig) -> None:
    for key in ("label_at", "hide_at", "block_at"):
        if not 0.0 < getattr(c, key) <= 1.0:
            raise ModerationConfigError(key, f"must be in (0, 1], got {getattr(c, key)!r}")
    if not c.label_at <= c.hide_at <= c.block_at:
        raise ModerationConfigError("hide_at", "must lie between label_at and block_at")
    minimums = {"duplicate_window_s": 1, "duplicate_hide_at": 2, "duplicate_min_chars": 0, "burst_window_s": 1,
                "burst_at": 2, "mention_stuffing_at": 1, "hashtag_stuffing_at": 1, "new_account_s": 0,
                "offender_window_s": 1, "offender_strikes": 1, "history_entries": 1, "sensitive_model_terms": 0,
                "duplicate_block_at": c.duplicate_hide_at, "history_max": max(c.burst_at, c.duplicate_block_at)}
    for key, least in minimums.items():
        if getattr(c, key) < least:
            raise ModerationConfigError(key, f"must be at least {least}, got {getattr(c, key)!r}")
    for key in ("blocked_terms", "sensitive_terms"):
        for term in getattr(c, key):
            if not term_words(term):
                raise ModerationConfigError(key, f"holds {term!r}, which has no letters or digits")
    for domain in c.blocked_domains:
        if _DOMAIN.fullmatch(normalize_domain(domain)) is None:
            raise ModerationConfigError("blocked_domains", f"holds {domain!r}, which is not a domain name")


# -- rules: terms and domains ---------------------------------------------------------------

# Invisible characters dropped before matching: "f\u200buck" is "fuck" to a reader.
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
# Inside a word that has an ASCII letter, digits and symbols read as letters, and so do Cyrillic
# look-alikes: "sh1t", "a$$", "fuсk" (Cyrillic с). A word without one ("2024", "сука", "$5")
# keeps its characters.
_LOOKALIKE = str.maketrans("013457@$!€аеорсухіѕј", "oieastasieaeopcyxisj")
# Written between the letters of a word to dodge a filter ("f.u.c.k", "s-h-i-t").
_SEPARATORS = re.compile("[-._~'\u2019^]")
_EDGE_PUNCTUATION = "\"'([{<.,;:!?)]}>-_~\u2018\u2019\u201c\u201d#"
_MASK = "*"  # "f*ck", "f**k": a masked letter matches any letter


_EDGES = re.compile(rf"(?<!\S)[{re.escape(_EDGE_PUNCTUATION)}]+|[{re.escape(_EDGE_PUNCTUATION)}]+(?!\S)")
_DISGUISED = re.compile(rf"(?<!\S)\S*?[{re.escape(''.join(map(chr, _LOOKALIKE)))}]\S*")
_ASCII_LETTER = re.compile("[a-z]")
_RUNS = re.compile(r"(.)\1+")
_FIRST_GROUP = operator.itemgetter(1)
_MASK_ONLY = re.compile(rf"(?<!\S){re.escape(_MASK)}+(?!\S)")


def _undisguise(word: re.Match[str]) -> str:
    w = word.group()
    return w.translate(_LOOKALIKE) if _ASCII_LETTER.search(w) else w


def _squeeze(word: str) -> str:
    """Runs of one character collapsed: "fuuuck" and "fuck" share a key."""
    return _RUNS.sub(_FIRST_GROUP, word)  # a C callable: a "\\1" template costs 3x


@dataclass(frozen=True, slots=True)
class Words:
    """A text's words as term rules compare them: de-obfuscated and casefolded (`words`), and
    the same with runs of a letter collapsed (`keys`). Computed once for every term list, with
    whole-text regular expressions rather than a Python step per word."""

    words: tuple[str, ...]
    keys: tuple[str, ...]
    masked: bool

    @classmethod
    def of(cls, text: str) -> Words:
        text = unicodedata.normalize("NFKC", text).casefold()
        if not text.isascii():
            text = _INVISIBLE.sub("", text)
        text = _SEPARATORS.sub("", _DISGUISED.sub(_undisguise, _EDGES.sub("", text)))
        masked = _MASK in text
        if masked:
            text = _MASK_ONLY.sub("", text)
        return cls(tuple(text.split()), tuple(_squeeze(text).split()), masked)


def term_words(term: str) -> tuple[str, ...]:
    """A configured term as words, normalized the way text is."""
    return Words.of(term).words


@dataclass(frozen=True)
class TermIndex:
    """Terms and phrases keyed by their first word's squeezed form, for one lookup per word."""

    by_key: Mapping[str, tuple[tuple[str, ...], ...]]
    masked: Mapping[tuple[str, int], tuple[tuple[str, ...], ...]]  # (first letter, length)

    @classmethod
    def build(cls, terms: Iterable[str]) -> TermIndex:
        by_key: dict[str, list[tuple[str, ...]]] = {}
        masked: dict[tuple[str, int], list[tuple[str, ...]]] = {}
        for term in terms:
            words = term_words(term)
            by_key.setdefault(_squeeze(words[0]), []).append(words)
            masked.setdefault((words[0][0], len(words[0])), []).append(words)
        return cls({k: tuple(v) for k, v in by_key.items()}, {k: tuple(v) for k, v in masked.items()})

    def find(self, text: Words) -> list[str]:
        """The terms present in `text`, each once, in order of first appearance."""
        words, found = text.words, dict[str, None]()
        has_mask = text.masked and bool(self.masked)
        if not has_mask and self.by_key.keys().isdisjoint(text.keys):
            return []  # most texts: one set operation in C
        for i, word in enumerate(words):
            candidates = self.by_key.get(text.keys[i], ())
            if has_mask and _MASK in word and word[0] != _MASK:
                candidates += self.masked.get((word[0], len(word)), ())
            for term in candidates:
                if all(i + j < len(words) and _word_matches(words[i + j], t) for j, t in enumerate(term)):
                    found[" ".join(term)] = None
        return list(found)


def _word_matches(word: str, term: str) -> bool:
    """Word-bounded match with repeated letters ("fuuuck") and masked letters ("f*ck")."""
    if _MASK in word:
        return len(word) == len(term) and all(w in (t, _MASK) for w, t in zip(word, term))
    return _squeeze(word) == _squeeze(term) and len(word) >= len(term)


# Domain names as the entity extractor accepts hosts: labels of letters, digits, '-' or '_'.
_DOMAIN = re.compile(r"[^\W.]+(?:[-_][^\W.]+)*(?:\.[^\W.]+(?:[-_][^\W.]+)*)*")


def normalize_domain(domain: str) -> str:
    """"*.Evil.COM." -> "evil.com": a rule covers the domain and every subdomain of it."""
    return domain.strip().casefold().removeprefix("*.").strip(".")


_HOST_END = re.compile("[/?#:]")


def link_host(url: str) -> str:
    """The host of a URL as extracted by pipeline/entities.py (scheme required, no userinfo)."""
    return _HOST_END.split(url.split("://", 1)[-1], maxsplit=1)[0].casefold().rstrip(".")


def blocked_domain_of(host: str, domains: frozenset[str]) -> str | None:
    """The blocked domain `host` is or lies under: "a.b.evil.com" is under "evil.com"."""
    if not domains:
        return None
    labels = host.split(".")
    for i in range(len(labels)):
        suffix = ".".join(labels[i:])
        if suffix in domains:
            return suffix
    return None


def fingerprint(words_text: str, min_chars: int) -> str | None:
    """The duplicate key of a tweet, from its text with links and mentions blanked (spammers vary
    those, see `without_links_and_mentions`): its words casefolded, hashed; None for a text
    shorter than `min_chars` once normalized."""
    words = " ".join(_WORD.findall(unicodedata.normalize("NFKC", words_text).casefold()))
    if len(words) < max(min_chars, 1):
        return None
    return hashlib.blake2b(words.encode(), digest_size=8).hexdigest()


_WORD = re.compile(r"\w+")


def without_links_and_mentions(text: str, entities: Entities) -> str:
    """The NFC text with URLs and mentions blanked: a handle or a link path is not a word."""
    nfc = unicodedata.normalize("NFC", text)
    spans = sorted([(u.start, u.end) for u in entities.urls] + [(m.start, m.end) for m in entities.mentions])
    if not spans:
        return nfc
    kept, pos = [], 0
    for start, end in spans:
        kept.append(nfc[pos:start])
        pos = end
    kept.append(nfc[pos:])
    return " ".join(kept)


# -- the text model -------------------------------------------------------------------------

FloatArray = npt.NDArray[np.float64]


class TextModel:
    """P(offensive) of a text from a TF-IDF + calibrated linear model's fitted weights.

    score(x) = mean over folds k of 1 / (1 + exp(a_k * (w_k . tfidf(x) + b_k) + c_k)), with
    tfidf(x) = counts(x) * idf, L2-normalized over the vocabulary: what scikit-learn's
    CalibratedClassifierCV(LinearSVC, method="sigmoid").predict_proba computes, without its
    per-call input validation.
    """

    def __init__(self, vocabulary: Mapping[str, int], idf: Sequence[float], coef: Sequence[Sequence[float]],
                 intercept: Sequence[float], calibration: Sequence[tuple[float, float]],
                 token_pattern: str = r"(?u)\b\w\w+\b") -> None:
        self._idf = np.asarray(idf, dtype=np.float64)
        self._coef = np.asarray(coef, dtype=np.float64).reshape(len(intercept), -1)
        self._intercept = np.asarray(intercept, dtype=np.float64)
        self._a = np.asarray([a for a, _ in calibration], dtype=np.float64)
        self._c = np.asarray([c for _, c in calibration], dtype=np.float64)
        self._index = dict(vocabulary)
        self._token = re.compile(token_pattern)
        weighted = (self._coef * self._idf).T  # term x fold
        # One row per term: (idf, idf * w_1, ..., idf * w_K), read with one dict lookup.
        self._rows = {t: (float(self._idf[j]), *map(float, weighted[j])) for t, j in self._index.items()}
        self._folds = list(zip(map(float, self._intercept), map(float, self._a), map(float, self._c)))

    @classmethod
    def packaged(cls) -> TextModel:
        """alt-profanity-check's model, read from its wheel (no network), checked against it."""
        pc = importlib.import_module("profanity_check.profanity_check")
        vec, cal = pc.vectorizer, pc.model
        expected = {"analyzer": "word", "ngram_range": (1, 1), "norm": "l2", "use_idf": True, "sublinear_tf": False,
                    "binary": False, "lowercase": True, "preprocessor": None, "tokenizer": None, "strip_accents": None}
        actual = {k: vec.get_params()[k] for k in expected}
        if actual != expected or getattr(cal, "method", None) != "sigmoid" or len(cal.classes_) != 2:
            raise StarlingError(f"alt-profanity-check's model changed shape ({actual}); pipeline/moderation.py "
                                "reads TF-IDF unigrams with an L2 norm and sigmoid-calibrated binary folds")
        folds = cal.calibrated_classifiers_
        model = cls(vec.vocabulary_, vec.idf_, [f.estimator.coef_[0] for f in folds],
                    [f.estimator.intercept_[0] for f in folds],
                    [(f.calibrators[0].a_, f.calibrators[0].b_) for f in folds], vec.token_pattern)
        probes = ["you are a stupid idiot", "have a lovely day", "what the f*ck", ""]
        reference = pc.predict_prob(probes)
        if any(abs(model.score(p) - float(r)) > 1e-9 for p, r in zip(probes, reference)):
            raise StarlingError("the fast path of the text model disagrees with alt-profanity-check")
        return model

    def score(self, text: str) -> float:
        """One text: pure Python, about 30 µs for a tweet."""
        counts: dict[str, int] = {}
        for token in self._token.findall(text.lower()):
            if token in self._rows:
                counts[token] = counts.get(token, 0) + 1
        sums = [0.0] * len(self._folds)
        squares = 0.0
        for token, n in counts.items():
            row = self._rows[token]
            squares += (n * row[0]) ** 2
            for k in range(len(sums)):
                sums[k] += n * row[k + 1]
        norm = math.sqrt(squares) or 1.0
        total = sum(1.0 / (1.0 + math.exp(a * (s / norm + b) + c)) for s, (b, a, c) in zip(sums, self._folds))
        return total / len(self._folds)

    def score_batch(self, texts: Sequence[str]) -> list[float]:
        """Many texts in one call: tokens in Python, the linear algebra in numpy."""
        docs: list[int] = []
        terms: list[int] = []
        for i, text in enumerate(texts):
            ids = [self._index[t] for t in self._token.findall(text.lower()) if t in self._index]
            docs.extend([i] * len(ids))
            terms.extend(ids)
        n, width = len(texts), len(self._idf)
        keys, counts = np.unique(np.asarray(docs, dtype=np.int64) * width + np.asarray(terms, dtype=np.int64),
                                 return_counts=True)
        doc, term = keys // width, keys % width
        tfidf = counts * self._idf[term]
        norms = np.sqrt(np.bincount(doc, weights=tfidf**2, minlength=n))
        norms[norms == 0.0] = 1.0
        dots = np.stack([np.bincount(doc, weights=tfidf * w[term], minlength=n) for w in self._coef], axis=1)
        decision = dots / norms[:, None] + self._intercept
        probs: FloatArray = 1.0 / (1.0 + np.exp(self._a * decision + self._c))
        return [float(p) for p in probs.mean(axis=1)]

    def term_weights(self) -> dict[str, float]:
        """Each vocabulary term's mean linear weight across folds (positive: offensive)."""
        mean = self._coef.mean(axis=0)
        return {t: float(mean[j]) for t, j in self._index.items()}

    def top_terms(self, n: int) -> tuple[str, ...]:
        """The `n` words of three letters or more with the largest positive weights, most
        offensive first (shorter tokens are mostly fragments: "f*ck" tokenizes as "ck")."""
        ranked = sorted(((w, t) for t, w in self.term_weights().items() if len(t) >= 3 and w > 0), reverse=True)
        return tuple(t for _, t in ranked[:n])


# -- per-author state -------------------------------------------------------------------------

Posted = tuple[int, int, str]  # (tweet id, at ms, fingerprint or "")
Strike = tuple[int, int, int]  # (tweet id, at ms, Action value: HIDE or BLOCK)


@dataclass(frozen=True, slots=True)
class AuthorHistory:
    """What moderation remembers of one author: recent posts and recent hide/block verdicts.

    Bounded: entries older than two of their longest window are dropped (one window back from
    a replayed tweet, see the module docstring), and at most `history_max` of each are kept,
    the newest. Ordered by tweet id."""

    posts: tuple[Posted, ...] = ()
    strikes: tuple[Strike, ...] = ()

    def earlier_posts(self, tweet_id: int, now_ms: int, window_ms: int) -> list[Posted]:
        return [p for p in self.posts if p[0] < tweet_id and now_ms - p[1] < window_ms]

    def earlier_strikes(self, tweet_id: int, now_ms: int, window_ms: int) -> int:
        return sum(1 for s in self.strikes if s[0] < tweet_id and now_ms - s[1] < window_ms)

    def recorded(self, post: Post, fp: str | None, action: Action, config: ModerationConfig) -> AuthorHistory:
        """This history after `post` got `action` (replacing an earlier record of the same tweet),
        without what has left every window."""
        keep_ms = 2000 * max(config.duplicate_window_s, config.burst_window_s)
        posts = _upsert(self.posts, (post.tweet_id, post.at_ms, fp or ""))
        posts = tuple(p for p in posts if post.at_ms - p[1] < keep_ms)[-config.history_max:]
        return AuthorHistory(posts, self._strikes_after(post.tweet_id, post.at_ms, action, config))

    def overridden(self, tweet_id: int, at_ms: int, action: Action, config: ModerationConfig) -> AuthorHistory:
        """A moderator's decision on the tweet posted at `at_ms` replaces its strike: allow or
        label clears it, hide or block sets it."""
        return AuthorHistory(self.posts, self._strikes_after(tweet_id, at_ms, action, config))

    def _strikes_after(self, tweet_id: int, at_ms: int, action: Action, config: ModerationConfig) -> tuple[Strike, ...]:
        keep_ms = 2000 * config.offender_window_s
        strikes = tuple(s for s in self.strikes if s[0] != tweet_id and at_ms - s[1] < keep_ms)
        if action >= Action.HIDE:
            strikes = _upsert(strikes, (tweet_id, at_ms, int(action)))
        return strikes[-config.history_max:]

    def to_json(self) -> dict[str, Any]:
        return {"posts": [list(p) for p in self.posts], "strikes": [list(s) for s in self.strikes]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> AuthorHistory:
        if not data:
            return cls()
        posts = tuple((int(i), int(t), str(f)) for i, t, f in data.get("posts", ()))
        strikes = tuple((int(i), int(t), int(a)) for i, t, a in data.get("strikes", ()))
        return cls(posts, strikes)


def _upsert(entries: tuple[Any, ...], entry: tuple[Any, ...]) -> tuple[Any, ...]:
    """Entries ordered by tweet id, with `entry` replacing one of the same tweet id."""
    if not entries or entries[-1][0] < entry[0]:
        return (*entries, entry)  # the usual case: a newer tweet
    kept = [e for e in entries if e[0] != entry[0]]
    kept.append(entry)
    kept.sort(key=lambda e: e[0])
    return tuple(kept)


class AuthorHistories:
    """Histories of the most recently active authors of one process (LRU, bounded by entries: an
    author counts 1 plus their posts and strikes; no clock).

    The tweets topic is keyed by author id, so every tweet of an author reaches the same
    partition and the same worker: each worker needs only its own authors' histories."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.entries = 0
        self._by_author: OrderedDict[int, AuthorHistory] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_author)

    def __contains__(self, author_id: int) -> bool:
        return author_id in self._by_author

    def get(self, author_id: int) -> AuthorHistory:
        return self._by_author.get(author_id) or AuthorHistory()

    def put(self, author_id: int, history: AuthorHistory) -> None:
        old = self._by_author.get(author_id)
        if old is not None:
            self.entries -= _weight(old)
        self._by_author[author_id] = history
        self._by_author.move_to_end(author_id)
        self.entries += _weight(history)
        # The author just put stays, even alone over the bound (history_max bounds one history).
        while self.entries > self.max_entries and len(self._by_author) > 1:
            _author, gone = self._by_author.popitem(last=False)  # the least recently active author
            self.entries -= _weight(gone)

    def clear(self) -> None:
        self._by_author.clear()
        self.entries = 0

    def snapshot(self) -> dict[str, Any]:
        """Plain JSON-able data, oldest activity first."""
        return {"max_entries": self.max_entries,
                "authors": {str(a): h.to_json() for a, h in self._by_author.items()}}

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> AuthorHistories:
        histories = cls(int(data["max_entries"]))
        for author, history in data["authors"].items():
            histories.put(int(author), AuthorHistory.from_json(history))
        return histories


def _weight(history: AuthorHistory) -> int:
    return 1 + len(history.posts) + len(history.strikes)


# -- judging a tweet ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Post:
    """What moderation needs of a tweet: its ids, text, event time and the author's sign-up time."""

    tweet_id: int
    author_id: int
    text: str
    at_ms: int  # the tweet's event time (created_at), never the clock
    author_created_at_ms: int | None = None  # unknown: the new-account signal stays silent


@dataclass(frozen=True)
class Verdict:
    """One tweet's verdict. `reasons` are the signals behind the action, most severe first;
    `scores` hold every signal's measure (see SCORES); `evidence` names matched terms and hosts."""

    tweet_id: int
    author_id: int
    action: Action
    reasons: tuple[str, ...]
    scores: Mapping[str, float] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"tweet_id": str(self.tweet_id), "author_id": str(self.author_id), "action": self.action.code,
                "reasons": list(self.reasons), "scores": dict(self.scores), "evidence": list(self.evidence)}


# The measure behind each score, in Verdict.scores.
SCORES = {
    "offensive_text": "model probability of offensive text, 0..1",
    "blocked_term": "blocked terms matched",
    "sensitive_term": "sensitive terms matched",
    "blocked_domain": "links to blocked domains",
    "duplicate_text": "copies of this text by the author within the duplicate window, this one included",
    "burst": "posts by the author within the burst window, this one included",
    "mention_stuffing": "distinct @mentions",
    "hashtag_stuffing": "distinct hashtags",
    "new_account": "account age at posting, seconds (absent when unknown)",
    "repeat_offender": "the author's earlier hide/block verdicts within the offender window",
}
AGGRAVATORS = ("new_account", "repeat_offender")
# The scores whose absence means 0 (counts, and a probability that is 0): Cassandra's verdict row
# keeps only those that are not (`stored_scores`), and reading it puts the zeros back
# (`full_scores`). Most are 0 for most tweets: a benchmark tweet's map held 10 cells where 3-4 carry
# something, its row's values 342 bytes against 159 without the zeros. `new_account` is absent when the
# account's age is unknown, so it is kept whatever its value. The verdicts topic carries them all.
ZERO_WHEN_ABSENT = tuple(s for s in SCORES if s != "new_account")


def stored_scores(scores: Mapping[str, float]) -> dict[str, float]:
    """A model verdict's scores as its Cassandra row keeps them: without the zeros that
    `full_scores` restores."""
    return {k: float(v) for k, v in scores.items() if v or k not in ZERO_WHEN_ABSENT}


def full_scores(stored: Mapping[str, float]) -> dict[str, float]:
    """A model verdict's scores from its Cassandra row (`stored_scores`, or every score as rows
    before it kept them): the zeros put back."""
    return {**dict.fromkeys(ZERO_WHEN_ABSENT, 0.0), **stored}


def combine(levels: Mapping[str, Action], aggravators: Sequence[str]) -> tuple[Action, tuple[str, ...]]:
    """The verdict of fired signals (signal -> level): the most severe level, a label raised to
    hide by any aggravator; reasons most severe first, then the aggravators that raised it."""
    fired = sorted(((lvl, s) for s, lvl in levels.items() if lvl > Action.ALLOW), key=lambda x: -x[0])
    action = fired[0][0] if fired else Action.ALLOW
    reasons = tuple(s for _, s in fired)
    if action == Action.LABEL and aggravators:
        return Action.HIDE, reasons + tuple(aggravators)
    return action, reasons


class Moderator:
    """Judges tweets with a config, a text model and (optionally) its own author histories."""

    def __init__(self, config: ModerationConfig, model: TextModel, histories: AuthorHistories | None = None) -> None:
        self.config = config
        self.model = model
        self.histories = histories if histories is not None else AuthorHistories(config.history_entries)
        self._blocked = TermIndex.build(config.blocked_terms)
        self._sensitive = TermIndex.build((*config.sensitive_terms, *model.top_terms(config.sensitive_model_terms)))
        self._domains = frozenset(normalize_domain(d) for d in config.blocked_domains)
        self._has_terms = bool(self._blocked.by_key or self._sensitive.by_key)

    def moderate(self, post: Post) -> Verdict:
        """One tweet, against and into this moderator's histories."""
        return self._judge_in_place(post, self.model.score(post.text))

    def moderate_batch(self, posts: Sequence[Post]) -> list[Verdict]:
        """Many tweets, in order (an author's earlier tweets count for the later ones); the texts
        are scored in one model call."""
        scores = self.model.score_batch([p.text for p in posts]) if posts else []
        return [self._judge_in_place(p, s) for p, s in zip(posts, scores)]

    def override(self, author_id: int, tweet_id: int, at_ms: int, action: Action) -> None:
        """A moderator's decision, so that repeat-offender counting follows it."""
        history = self.histories.get(author_id).overridden(tweet_id, at_ms, action, self.config)
        self.histories.put(author_id, history)

    def _judge_in_place(self, post: Post, text_score: float) -> Verdict:
        verdict, history = self.assess(post, text_score, self.histories.get(post.author_id))
        self.histories.put(post.author_id, history)
        return verdict

    def assess(self, post: Post, text_score: float, history: AuthorHistory) -> tuple[Verdict, AuthorHistory]:
        """The verdict of `post` given its text score and its author's history, and the history
        after it: pure, for agents that keep histories in a table keyed by author."""
        text = self.facts(post.text)
        scores, levels = self._levels(post, text, text_score, history)
        aggravators = []
        if post.author_created_at_ms is not None:
            scores["new_account"] = (post.at_ms - post.author_created_at_ms) / 1000
            if scores["new_account"] < self.config.new_account_s:
                aggravators.append("new_account")
        if scores["repeat_offender"] >= self.config.offender_strikes:
            aggravators.append("repeat_offender")
        action, reasons = combine(levels, aggravators)
        verdict = Verdict(post.tweet_id, post.author_id, action, reasons, scores, text.evidence())
        return verdict, history.recorded(post, text.fingerprint, action, self.config)

    def facts(self, text: str) -> TextFacts:
        """What the rules and the spam signals see in a text, whoever posted it."""
        entities = extract(text)
        plain = without_links_and_mentions(text, entities)
        words = Words.of(plain) if self._has_terms else _NO_WORDS
        hosts = (blocked_domain_of(link_host(u.text), self._domains) for u in entities.urls)
        return TextFacts(blocked_terms=tuple(self._blocked.find(words)),
                         sensitive_terms=tuple(self._sensitive.find(words)),
                         blocked_hosts=tuple(h for h in hosts if h is not None),
                         fingerprint=fingerprint(plain, self.config.duplicate_min_chars),
                         mentions=len({m.text.casefold() for m in entities.mentions}),
                         hashtags=len({h.key for h in entities.hashtags}))

    def _levels(self, post: Post, text: TextFacts, text_score: float,
                history: AuthorHistory) -> tuple[dict[str, float], dict[str, Action]]:
        c, hide = self.config, Action.HIDE
        earlier = history.earlier_posts(post.tweet_id, post.at_ms, 1000 * c.duplicate_window_s)
        copies = 1 + sum(1 for p in earlier if text.fingerprint is not None and p[2] == text.fingerprint)
        recent = 1 + len(history.earlier_posts(post.tweet_id, post.at_ms, 1000 * c.burst_window_s))
        scores = {"offensive_text": text_score, "blocked_term": float(len(text.blocked_terms)),
                  "sensitive_term": float(len(text.sensitive_terms)), "blocked_domain": float(len(text.blocked_hosts)),
                  "duplicate_text": float(copies), "burst": float(recent), "mention_stuffing": float(text.mentions),
                  "hashtag_stuffing": float(text.hashtags),
                  "repeat_offender": float(history.earlier_strikes(post.tweet_id, post.at_ms,
                                                                   1000 * c.offender_window_s))}
        levels = {
            "blocked_term": Action.BLOCK if text.blocked_terms else Action.ALLOW,
            "blocked_domain": Action.BLOCK if text.blocked_hosts else Action.ALLOW,
            "offensive_text": _text_level(text_score, c),
            "sensitive_term": Action.LABEL if text.sensitive_terms else Action.ALLOW,
            "duplicate_text": (Action.BLOCK if copies >= c.duplicate_block_at else
                               hide if copies >= c.duplicate_hide_at else Action.ALLOW),
            "burst": hide if recent >= c.burst_at else Action.ALLOW,
            "mention_stuffing": hide if text.mentions >= c.mention_stuffing_at else Action.ALLOW,
            "hashtag_stuffing": hide if text.hashtags >= c.hashtag_stuffing_at else Action.ALLOW,
        }
        return scores, levels


@dataclass(frozen=True, slots=True)
class TextFacts:
    """The author-independent findings in one text."""

    blocked_terms: tuple[str, ...]
    sensitive_terms: tuple[str, ...]
    blocked_hosts: tuple[str, ...]  # the blocked domain of each offending link
    fingerprint: str | None
    mentions: int  # distinct
    hashtags: int  # distinct keys

    def evidence(self) -> tuple[str, ...]:
        return (*(f"blocked_term:{t}" for t in self.blocked_terms),
                *(f"sensitive_term:{t}" for t in self.sensitive_terms),
                *(f"blocked_domain:{h}" for h in dict.fromkeys(self.blocked_hosts)))


def _text_level(score: float, c: ModerationConfig) -> Action:
    if score >= c.block_at:
        return Action.BLOCK
    if score >= c.hide_at:
        return Action.HIDE
    return Action.LABEL if score >= c.label_at else Action.ALLOW


_DEFAULTS = ModerationConfig()
_NO_WORDS = Words((), (), False)
