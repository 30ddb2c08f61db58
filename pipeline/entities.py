"""Tweet text: its length as users see it, and its hashtags, mentions, cashtags and URLs.

Length follows twitter-text's v3 configuration (config/v3.json, parseTweet): the text is
NFC-normalized; a code point in U+0000-U+10FF, U+2000-U+200D, U+2010-U+201F or U+2032-U+2037
weighs 1 and any other weighs 2; every URL weighs 23 (the t.co link it becomes); an emoji
sequence of several code points (ZWJ family, skin tone, flag, keycap, variation selector, tag
sequence) weighs 2 in all. Unlike twitter-text, a URL needs its http:// or https:// scheme.

Entities are found in the NFC text; offsets are code-point indexes into it, end exclusive,
covering the sigil. Nothing is found inside a URL.

- url: http(s)://, a host of dot-separated labels (ASCII letters, digits, '-', '_', Latin, Greek
  or Cyrillic letters) with at least one dot, an optional :port, then /, ? or # and a path of
  RFC 3986 characters. Trailing .,:;!?'" and unbalanced ) or ] are left out. Not preceded by an
  ASCII letter, digit or '_' ("xhttp://a.b" is no URL).
- hashtag: '#' or '＃', then 1-100 letters, marks, decimal digits or '_' with at least one
  letter ("#123" is none); not preceded by one of those or '&' ("a#b", "&#39;"); '#' followed by
  U+FE0F or U+20E3 is the keycap emoji. A run longer than 100 is no hashtag, not a cut one. A
  hashtag stops where a URL begins ("#日本https://a.b" tags "日本").
- mention: '@' or '＠', then 1-15 ASCII letters, digits or '_', the whole run (16 or more is no
  mention); not preceded by a letter, mark, digit, '_' or one of !#$%&*@＠ (an e-mail address:
  "a@b.com"); not followed by '@' or a Latin letter outside ASCII ("@josé").
- cashtag: '$', 1-6 ASCII letters, optionally '.' or '_' and 1-2 letters ($AAPL, $BRK.A); not
  preceded by a letter, mark, digit, '_' or '$'; not followed by one ("$AAPL5" is none).

Hashtag and cashtag keys are NFKC(casefold(NFKC(tag))), close to Unicode's NFKC_Casefold: case
and compatibility variants (fullwidth, ligatures) count as one tag; `text` keeps what was typed.

Patterns use possessive quantifiers and every scan is bounded, so work stays linear in the length
of the text: no input can send the regex engine into catastrophic backtracking.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

# Twitter's limit since November 2017: twitter-text v3 maxWeightedTweetLength (140 CJK characters).
MAX_TWEET_LENGTH = 280
# Every URL is rewritten to a t.co link of this length, so it costs the same however long it is.
URL_LENGTH = 23
# An emoji costs what one CJK character does, however many code points it joins (twitter-text v3).
EMOJI_LENGTH = 2
# Longest tag we index: a longer run is noise rather than a topic, and the cap bounds each scan.
MAX_HASHTAG = 100
# Twitter usernames are 1-15 characters of [A-Za-z0-9_].
MAX_HANDLE = 15

# Code points that weigh 2: all but the weight-100 ranges of twitter-text's config/v3.json.
_HEAVY = re.compile(r"[^\x00-\u10ff\u2000-\u200d\u2010-\u201f\u2032-\u2037]")
# Emoji bases: a superset of Extended_Pictographic (UTS #51) without the skin tones; the emoji
# planes are taken whole so that emoji newer than this Python's Unicode tables still count.
_PICTO = (
    r"\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u21aa\u231a-\u23ff\u24c2\u25aa-\u25fe"
    r"\u2600-\u27bf\u2934\u2935\u2b05-\u2b55\u3030\u303d\u3297\u3299"
    r"\U0001f000-\U0001f3fa\U0001f400-\U0001faff\U0001fc00-\U0001fffd"
)
# What extends an emoji: variation selectors, skin tones (Fitzpatrick modifiers), tag characters.
_EMOJI_TAIL = r"\ufe0e\ufe0f\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f"
_EMOJI = re.compile(
    r"[\U0001f1e6-\U0001f1ff]{2}"  # a flag: two regional indicators
    r"|[#*0-9]\ufe0f?+\u20e3"  # a keycap
    rf"|[{_PICTO}][{_EMOJI_TAIL}]*+(?:\u200d[{_PICTO}][{_EMOJI_TAIL}]*+)*+"  # ZWJ sequence
)

# Host label characters; other scripts are expected in punycode (xn--).
_LABEL = r"0-9A-Za-z_\-\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u0370-\u03ff\u0400-\u04ff"
# Path, query and fragment: RFC 3986 unreserved, reserved and '%', plus the label letters.
_PATH = _LABEL + r"~.:/?#\[\]@!$&'()*+,;=%"
_URL = re.compile(
    r"(?<![0-9A-Za-z_])[Hh][Tt][Tt][Pp][Ss]?+://"
    rf"[{_LABEL}]++(?:\.[{_LABEL}]++)++(?::[0-9]++)?+"
    rf"(?P<rest>[/?#][{_PATH}]*+)?+"
)
# Sentence punctuation that ends a URL rather than belongs to it.
_TRAILING = frozenset(".,:;!?'\"")
_OPENER = {")": "(", "]": "["}

_SIGIL = re.compile("[#\uff03@\uff20$]")
_HANDLE = re.compile(r"[0-9A-Za-z_]++")
_TICKER = re.compile(r"[A-Za-z]{1,6}+(?:[._][A-Za-z]{1,2}+)?+")
# Just before '@', these make it part of an e-mail address or another token (twitter-text's set).
_NOT_BEFORE_MENTION = frozenset("!#$%&*@\uff20")


@dataclass(frozen=True, slots=True)
class Hashtag:
    text: str
    start: int
    end: int
    key: str


@dataclass(frozen=True, slots=True)
class Mention:
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Cashtag:
    text: str
    start: int
    end: int
    key: str


@dataclass(frozen=True, slots=True)
class Url:
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Entities:
    hashtags: tuple[Hashtag, ...]
    mentions: tuple[Mention, ...]
    urls: tuple[Url, ...]
    cashtags: tuple[Cashtag, ...]


def tag_key(tag: str) -> str:
    """The counting key of a hashtag or cashtag (without its sigil): "Python" and "ＰＹＴＨＯＮ" agree."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", tag).casefold())


def tweet_length(text: str) -> int:
    """The weighted length of `text`, to compare with MAX_TWEET_LENGTH."""
    text = unicodedata.normalize("NFC", text)
    total = pos = 0
    for url in _find_urls(text):
        total += _weigh(text[pos : url.start]) + URL_LENGTH
        pos = url.end
    return total + _weigh(text[pos:])


# Texts whose entities a process remembers. One worker extracts a tweet's entities four times on
# its way through the agents (moderation's features, notifications' recipients and what they
# notify, the hashtags counted for trends), within a batch or two; Entities are immutable.
EXTRACT_CACHE = 8192


def extract(text: str) -> Entities:
    """The hashtags, mentions, URLs and cashtags of `text`, offsets into its NFC form (the same
    object for the same text while this process remembers it: bench/entities.py)."""
    return _extract_cached(text)


def extract_uncached(text: str) -> Entities:
    text = unicodedata.normalize("NFC", text)
    urls = _find_urls(text)
    starts, ends = [u.start for u in urls], [u.end for u in urls]
    hashtags: list[Hashtag] = []
    mentions: list[Mention] = []
    cashtags: list[Cashtag] = []
    for sigil in _SIGIL.finditer(text):
        i = sigil.start()
        k = bisect_right(starts, i)
        if k and ends[k - 1] > i:
            continue  # inside a URL
        stop = starts[k] if k < len(starts) else len(text)
        if sigil.group() == "$":
            if (cashtag := _cashtag(text, i, stop)) is not None:
                cashtags.append(cashtag)
        elif sigil.group() in "@\uff20":
            if (mention := _mention(text, i, stop)) is not None:
                mentions.append(mention)
        elif (hashtag := _hashtag(text, i, stop)) is not None:
            hashtags.append(hashtag)
    return Entities(tuple(hashtags), tuple(mentions), tuple(urls), tuple(cashtags))


_extract_cached = lru_cache(maxsize=EXTRACT_CACHE)(extract_uncached)


def hashtag_keys(text: str) -> list[str]:
    """Distinct hashtag keys of `text` in order of first appearance."""
    return list(dict.fromkeys(h.key for h in extract(text).hashtags))


def _weigh(text: str) -> int:
    total = _plain_weight(text)
    for emoji in _EMOJI.finditer(text):
        if emoji.end() - emoji.start() > 1:
            total += EMOJI_LENGTH - _plain_weight(emoji.group())
    return total


def _plain_weight(text: str) -> int:
    return len(text) + len(_HEAVY.findall(text))


def _find_urls(text: str) -> list[Url]:
    urls = []
    for m in _URL.finditer(text):
        end = m.end() if m.group("rest") is None else _trim(text, m.start("rest"), m.end())
        urls.append(Url(text[m.start() : end], m.start(), end))
    return urls


def _trim(text: str, start: int, end: int) -> int:
    """The end of text[start:end] without trailing punctuation and unbalanced closers."""
    excess = {c: text.count(c, start, end) - text.count(o, start, end) for c, o in _OPENER.items()}
    while end > start:
        last = text[end - 1]
        if last in excess and excess[last] > 0:
            excess[last] -= 1
        elif last not in _TRAILING:
            break
        end -= 1
    return end


def _is_word(char: str) -> bool:
    """A letter, mark, decimal digit or '_': what hashtags are made of."""
    category = unicodedata.category(char)
    return category[0] in "LM" or category == "Nd" or char == "_"


def _hashtag(text: str, i: int, stop: int) -> Hashtag | None:
    if i and (_is_word(text[i - 1]) or text[i - 1] == "&"):
        return None
    if text[i + 1 : i + 2] in ("\ufe0f", "\u20e3"):
        return None  # the keycap emoji #️⃣
    end, limit = i + 1, min(stop, i + 2 + MAX_HASHTAG)  # look one past the limit to see a long run
    while end < limit and _is_word(text[end]):
        end += 1
    tag = text[i + 1 : end]
    if len(tag) > MAX_HASHTAG or not any(unicodedata.category(c)[0] == "L" for c in tag):
        return None
    return Hashtag(tag, i, end, tag_key(tag))


def _mention(text: str, i: int, stop: int) -> Mention | None:
    if i and (_is_word(text[i - 1]) or text[i - 1] in _NOT_BEFORE_MENTION):
        return None
    handle = _HANDLE.match(text, i + 1, min(stop, i + 2 + MAX_HANDLE))
    if handle is None or len(handle.group()) > MAX_HANDLE:
        return None
    end = handle.end()
    if end < len(text) and _continues_handle(text[end]):
        return None
    return Mention(handle.group(), i, end)


def _continues_handle(char: str) -> bool:
    """'@' or a Latin letter outside ASCII: the handle typed is longer than its ASCII part."""
    latin = "\u00c0" <= char <= "\u024f" or "\u0300" <= char <= "\u036f" or "\u1e00" <= char <= "\u1eff"
    return char in "@\uff20" or (latin and _is_word(char))


def _cashtag(text: str, i: int, stop: int) -> Cashtag | None:
    if i and (_is_word(text[i - 1]) or text[i - 1] == "$"):
        return None
    ticker = _TICKER.match(text, i + 1, stop)
    if ticker is None or (ticker.end() < len(text) and _is_word(text[ticker.end()])):
        return None
    return Cashtag(ticker.group(), i, ticker.end(), tag_key(ticker.group()))

