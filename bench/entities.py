"""Entity extraction per tweet in the worker, with and without the per-process memo.

    .venv/bin/python -m bench.entities [--tweets 20000]

A tweet's entities are extracted four times on its way through one worker: moderation's
features, notifications' recipients and what they notify, and the hashtags counted for trends
(pipeline/entities.extract, EXTRACT_CACHE). The baseline, in the same run: four extractions
from scratch. Texts are unique per tweet, as real ones are (a memo that only hit on repeated
texts would show nothing here).
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from bench.common import progress, write_results
from pipeline import entities

USES_PER_TWEET = 4  # moderation, notifications (recipients, then each notification), hashtags


def texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = "the a new day launch match vote café naïve 東京 مرحبا news update thread read this".split()
    out = []
    for i in range(n):
        parts = rng.sample(words, 6) + [f"#{rng.choice(['rust', 'python', 'worldcup', 'ai', 'news'])}{rng.randrange(40)}",
                                        f"@user{rng.randrange(5000)}", f"tweet {i}"]
        if rng.random() < 0.4:
            parts.append(f"https://example.com/post/{i}?ref=home")
        if rng.random() < 0.2:
            parts.append(f"${rng.choice(['AAPL', 'TSLA', 'BTC'])}")
        rng.shuffle(parts)
        out.append(" ".join(parts))
    return out


def per_tweet_us(copies: list[list[str]], extract: object) -> float:
    fn = extract
    t0 = time.perf_counter()
    for uses in copies:
        for text in uses:
            fn(text)  # type: ignore[operator]
    return (time.perf_counter() - t0) * 1e6 / len(copies)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tweets", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    corpus = texts(args.tweets, args.seed)
    progress(f"{args.tweets:,} unique tweets, {USES_PER_TWEET} extractions each")
    # Same results either way (the memo returns what extraction would).
    assert all(entities.extract(t) == entities.extract_uncached(t) for t in corpus[:2000])
    # Each agent decodes its own copy of the text: a distinct string whose hash is not computed yet.
    copies = [[t.encode().decode() for _ in range(USES_PER_TWEET)] for t in corpus]
    rows = []
    for _round in range(3):  # interleaved, best of three each
        fresh = [[t.encode().decode() for t in uses] for uses in copies]
        rows.append((per_tweet_us(copies, entities.extract_uncached), per_tweet_us(fresh, entities.extract)))
    scratch, memo = min(r[0] for r in rows), min(r[1] for r in rows)
    results = {"tweets": args.tweets, "extractions_per_tweet": USES_PER_TWEET,
               "us_per_tweet_from_scratch": round(scratch, 1), "us_per_tweet_with_memo": round(memo, 1),
               "speedup": round(scratch / memo, 2), "memo_entries": entities.EXTRACT_CACHE}
    print(f"entities: {USES_PER_TWEET} extractions per tweet take {scratch:.1f} us from scratch, {memo:.1f} us "
          f"with the memo ({results['speedup']}x)")
    write_results("entities", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
