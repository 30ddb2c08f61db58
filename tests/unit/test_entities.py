"""Tweet text: weighted length, and hashtags, mentions, cashtags and URLs with their offsets."""

import unicodedata
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline import entities
from pipeline.entities import (
    MAX_HASHTAG,
    MAX_TWEET_LENGTH,
    URL_LENGTH,
    extract,
    hashtag_keys,
    tag_key,
    tweet_length,
)

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧: three people joined by ZWJ
ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"  # tag sequence


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", 0),
        ("a" * 280, 280),
        ("日" * 140, 280),
        ("日" * 141, 282),
        ("Привет", 6),  # Cyrillic is below U+10FF
        ("\u201csmart\u201d \u2014 dash", 14),  # quotes and dashes weigh 1
        ("\u2026", 2),  # but the ellipsis is outside the ranges
        ("cafe\u0301", 4),  # NFC first: e + combining acute is one code point
        ("https://example.com/" + "a" * 180, URL_LENGTH),  # a 200-character URL
        ("Hi http://test.co", 26),
        ("example.com", 11),  # no scheme, no URL: counted as typed
        (FAMILY, 2),
        ("\U0001f44d\U0001f3fd", 2),  # 👍🏽 skin tone
        ("\U0001f1ef\U0001f1f5", 2),  # 🇯🇵 flag
        ("#\ufe0f\u20e3", 2),  # #️⃣ keycap
        ("1\u20e3", 2),  # keycap without the variation selector
        ("\u2764\ufe0f", 2),  # ❤️
        ("\u2764", 2),
        ("\u00a9", 1),  # a bare © is a Latin-1 character...
        ("\u00a9\ufe0f", 2),  # ...and ©️ an emoji
        ("\U0001f3f3\ufe0f\u200d\U0001f308", 2),  # 🏳️‍🌈
        (ENGLAND, 2),
        (FAMILY + "\u200d", 3),  # a trailing ZWJ joins nothing and weighs 1
        # twitter-text's conformance cases for the v3 configuration (conformance/validate.yml)
        ("H\U0001f431\u263a\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466", 7),
        ("\U0001f64b\U0001f3fd\U0001f468\u200d\U0001f3a4", 4),
        ("Unicode 10.0 emoji: \U0001f92a; \U0001f9d5; \U0001f9d5\U0001f3fe; " + ENGLAND, 34),
        ("Unicode 9.0 emoji: \U0001f920; \U0001f483; \U0001f483\U0001f3fe", 29),
        ("故人西辞黄鹤楼" * 20 + "故人", 284),
    ],
)
def test_tweet_length(text, expected):
    assert tweet_length(text) == expected


def test_the_limit_is_280_ascii_or_140_cjk():
    assert tweet_length("a" * 280) == tweet_length("日" * 140) == MAX_TWEET_LENGTH
    assert tweet_length("日" * 141) > MAX_TWEET_LENGTH


@pytest.mark.parametrize(
    "text, expected",
    [
        ("#Python", [("Python", "python")]),
        ("#Python and #PYTHON", [("Python", "python"), ("PYTHON", "python")]),
        ("(#tag).", [("tag", "tag")]),
        ("#hello, world", [("hello", "hello")]),
        ("#1st #123 #_", [("1st", "1st")]),  # at least one letter
        ("a#b &#39; x#y", []),  # not inside a word or an HTML entity
        ("#a#b", [("a", "a")]),
        ("#under_score", [("under_score", "under_score")]),
        ("#日本語", [("日本語", "日本語")]),
        ("#café", [("café", "café")]),
        ("#cafe\u0301", [("café", "café")]),  # NFD input, NFC text
        ("#Привет", [("Привет", "привет")]),
        ("#تجربة", [("تجربة", "تجربة")]),
        ("#हिन्दी", [("हिन्दी", "हिन्दी")]),  # combining vowel signs are marks
        ("#Straße", [("Straße", "strasse")]),
        ("＃日本語", [("日本語", "日本語")]),  # fullwidth sigil
        ("＃ＰＹＴＨＯＮ", [("ＰＹＴＨＯＮ", "python")]),  # NFKC folds fullwidth letters
        ("https://x.com/#frag", []),
        ("#\ufe0f\u20e3 #\ufe0f\u20e3abc", []),  # keycap emoji
        ("#日本https://a.co", [("日本", "日本")]),  # stops where the URL starts
        ("#" + "a" * MAX_HASHTAG, [("a" * MAX_HASHTAG, "a" * MAX_HASHTAG)]),
        ("#" + "a" * (MAX_HASHTAG + 1), []),
    ],
)
def test_hashtags(text, expected):
    assert [(h.text, h.key) for h in extract(text).hashtags] == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("@jack", ["jack"]),
        ("hi @Jack!", ["Jack"]),
        (".@jack", ["jack"]),
        ("@jack's", ["jack"]),
        ("RT @a: @b_c", ["a", "b_c"]),
        ("＠jack", ["jack"]),
        ("@abcdefghijklmno", ["abcdefghijklmno"]),  # 15
        ("@abcdefghijklmnop", []),  # 16: not a handle, not cut to one
        ("@", []),
        ("@-jack", []),
        ("a@b.com first.last@example.com", []),  # e-mail addresses
        ("!@jack #@jack", []),
        ("@jack@mastodon.social", []),
        ("@josé", []),
        ("@userさん", ["user"]),
        ("https://x.com/@jack", []),
    ],
)
def test_mentions(text, expected):
    assert [m.text for m in extract(text).mentions] == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("$AAPL", [("AAPL", "aapl")]),
        ("$aapl", [("aapl", "aapl")]),
        ("$BRK.A $BRK_B", [("BRK.A", "brk.a"), ("BRK_B", "brk_b")]),
        ("($AAPL).", [("AAPL", "aapl")]),
        ("$ABCDEF", [("ABCDEF", "abcdef")]),
        ("$ABCDEFG", []),
        ("$AAPL5", []),
        ("$5 $5.99", []),
        ("US$AAPL", []),
        ("$$AAPL", []),
        ("https://x.com/?q=$AAPL", []),
    ],
)
def test_cashtags(text, expected):
    assert [(c.text, c.key) for c in extract(text).cashtags] == expected


WIKI = "https://en.wikipedia.org/wiki/Python_(programming_language)"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("http://example.com", ["http://example.com"]),
        ("see https://example.com.", ["https://example.com"]),
        ("https://example.com/a?b=1&c=2#frag", ["https://example.com/a?b=1&c=2#frag"]),
        ("https://example.com/a!?", ["https://example.com/a"]),
        ("(https://example.com/a)", ["https://example.com/a"]),
        ("https://example.com/a).", ["https://example.com/a"]),
        (f"({WIKI}).", [WIKI]),  # balanced parentheses stay
        ("HTTPS://www.ExaMPLE.COM/index.html", ["HTTPS://www.ExaMPLE.COM/index.html"]),
        ("http://192.168.0.1:8080/x", ["http://192.168.0.1:8080/x"]),
        ("http://example.com/Русские_слова", ["http://example.com/Русские_слова"]),
        ("日本https://example.com/です", ["https://example.com/"]),
        ("a http://a.co and https://b.co", ["http://a.co", "https://b.co"]),
        ("http://localhost/x", []),  # no dot in the host
        ("example.com", []),  # no scheme
        ("ftp://example.com", []),
        ("xhttp://example.com", []),
    ],
)
def test_urls(text, expected):
    assert [u.text for u in extract(text).urls] == expected


def test_offsets_are_code_points_of_the_nfc_text():
    text = "👍 #cafe\u0301 @jack $AAPL https://a.co/x"
    e = extract(text)
    assert [(h.start, h.end) for h in e.hashtags] == [(2, 7)]
    assert [(m.start, m.end) for m in e.mentions] == [(8, 13)]
    assert [(c.start, c.end) for c in e.cashtags] == [(14, 19)]
    assert [(u.start, u.end) for u in e.urls] == [(20, 34)]


def test_hashtag_keys_are_distinct_in_first_appearance_order():
    assert hashtag_keys("#b #A #B #a #ＡＡ #aa") == ["b", "a", "aa"]


@pytest.mark.parametrize(
    "text, hashtags, mentions, urls",
    [
        ("#" * 10_000, 0, 0, 0),
        ("#a" * 5_000, 1, 0, 0),
        ("@a" * 5_000, 0, 0, 0),  # each handle is followed by "@"
        ("#" + "a" * 10_000, 0, 0, 0),
        ("http://" * 1_400, 0, 0, 0),
        ("http://" + "a." * 5_000, 0, 0, 1),
        ("http://a.co/" + ")" * 10_000, 0, 0, 1),
        ("http://a.co/" + "(" * 5_000 + ")" * 5_000, 0, 0, 1),
    ],
)
def test_adversarial_inputs_give_sensible_answers(text, hashtags, mentions, urls):
    e = extract(text)
    assert (len(e.hashtags), len(e.mentions), len(e.urls)) == (hashtags, mentions, urls)
    assert tweet_length(text) >= 0


# Text rich in entity syntax: sigils, URL pieces, emoji parts and random characters.
PIECES = st.sampled_from(
    ["#", "＃", "@", "＠", "$", "&", "http://", "https://", "a.co", ".", "/", "(", ")", "?", " ", "_",
     "AAPL", "ab", "日本", "é", "e\u0301", "1", "\u200d", "\ufe0f", "\u20e3", "\U0001f468", "\U0001f3fd",
     "#tag", "@jack", "$BRK.A", "http://a.co", "https://b.co/p_(q)#f"]
)
TWEETS = st.lists(PIECES | st.text(max_size=3), max_size=40).map("".join)
ANY_TEXT = TWEETS | st.text()


def spans(text):
    e = extract(text)
    return [(x.start, x.end) for kind in (e.hashtags, e.mentions, e.urls, e.cashtags) for x in kind]


@given(ANY_TEXT)
def test_offsets_slice_back_to_the_entity(text):
    norm, e = nfc(text), extract(text)
    for h in e.hashtags:
        assert norm[h.start] in "#＃" and norm[h.start + 1 : h.end] == h.text
    for m in e.mentions:
        assert norm[m.start] in "@＠" and norm[m.start + 1 : m.end] == m.text
    for c in e.cashtags:
        assert norm[c.start] == "$" and norm[c.start + 1 : c.end] == c.text
    for u in e.urls:
        assert norm[u.start : u.end] == u.text


@given(ANY_TEXT)
def test_entities_never_overlap(text):
    ordered = sorted(spans(text))
    assert all(end <= start for (_, end), (start, _) in zip(ordered, ordered[1:]))


@given(ANY_TEXT)
def test_keys_are_stable(text):
    assert tag_key(tag_key(text)) == tag_key(text)
    e = extract(text)
    assert all(tag_key(x.key) == x.key for x in e.hashtags + e.cashtags)


# Letters of every script; U+0131 DOTLESS I is left out: str.upper() makes it I, whose case fold
# is i, while casefold() keeps ı apart (it is Turkish-specific, and Unicode's default folding isn't).
LETTERS = st.characters(categories=["Lu", "Ll", "Lt", "Lm", "Lo"], exclude_characters="\u0131")


@given(st.text(LETTERS, min_size=1, max_size=30))  # upper() at most triples a letter: <= 90 < 100
def test_case_does_not_change_the_key(tag):
    lower, upper = extract("#" + tag).hashtags, extract("#" + tag.upper()).hashtags
    assert len(lower) == len(upper) == 1
    assert lower[0].key == upper[0].key
    assert lower[0].text == nfc(tag) and upper[0].text == nfc(tag.upper())


@given(ANY_TEXT)
def test_length_does_not_depend_on_normalization(text):
    assert tweet_length(text) == tweet_length(nfc(text)) == tweet_length(unicodedata.normalize("NFD", text))


@given(ANY_TEXT, ANY_TEXT)
def test_length_adds_up_across_a_space(a, b):
    assert tweet_length(a + " " + b) == tweet_length(a) + 1 + tweet_length(b)


@given(ANY_TEXT, ANY_TEXT)
def test_entities_of_two_texts_joined_by_a_space_are_theirs(a, b):
    whole, left, right, shift = extract(a + " " + b), extract(a), extract(b), len(nfc(a)) + 1
    for kind in ("hashtags", "mentions", "urls", "cashtags"):
        moved = tuple(replace(x, start=x.start + shift, end=x.end + shift) for x in getattr(right, kind))
        assert getattr(whole, kind) == getattr(left, kind) + moved


@given(st.text().filter(lambda t: "://" not in nfc(t)))
def test_without_urls_every_code_point_weighs_one_or_two(text):
    assert tweet_length(text) <= 2 * len(nfc(text))
    if all(ord(c) <= 0x10FF for c in nfc(text)):
        assert tweet_length(text) == len(nfc(text))


@given(st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)))
def test_cjk_weighs_two(text):
    assert tweet_length(text) == 2 * len(text)


HOSTS = st.lists(st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True), min_size=2, max_size=4).map(".".join)
PATHS = st.from_regex(r"(/[A-Za-z0-9_~%=&-]{0,30}){0,10}", fullmatch=True)


@given(st.sampled_from(["http://", "https://"]), HOSTS, PATHS)
def test_a_url_of_any_length_counts_23(scheme, host, path):
    url = scheme + host + path
    assert [u.text for u in extract(f"see {url}. ok").urls] == [url]
    assert tweet_length(url) == URL_LENGTH


@given(st.lists(st.sampled_from(list("ab_#@＃＠$:/.?()1 é東\u0301\ufe0f") + ["http://", "https://a.b/", "#tag", "@al"]),
                max_size=30).map("".join))
def test_the_memo_answers_what_extraction_does_and_keeps_answering_it(text):
    first = entities.extract(text)
    assert first == entities.extract_uncached(text)
    assert entities.extract(text.encode().decode()) is first, "the same text, another string: remembered"
