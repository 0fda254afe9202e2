"""The contamination report at paper scale: a synthetic mixture against every evaluation split.

    python benchmarks/bench_contamination.py [DATA_DIR] [--conversations 200000] [--planted 200]

The mixture: `--conversations` conversations in Taiyi's shape (a human turn of 80-400 words or
120-600 Chinese characters, an answer of a quarter of that; 30% Chinese), their words and
characters drawn from the real train splits in DATA_DIR (default ../shared/data), streamed from
a pool of 5,000 so the mixture never sits in memory; every so often one quotes an evaluation unit
verbatim (`--planted` in all), which the report must find. Timed apart: the index of the
evaluation splits (the report on an empty mixture) and the whole report (index + scan).
"""

from __future__ import annotations

import itertools
import random
import resource
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from _timing import make_parser, timed

from taiyi_bench.finetune.data import Conversation
from taiyi_bench.harness.contamination import contamination_report, evaluation_splits, unit_texts
from taiyi_bench.harness.errors import DataNotFoundError
from taiyi_bench.harness.loading import load_split
from taiyi_bench.harness.registry import iter_specs

REPO_ROOT = Path(__file__).resolve().parents[1]
POOL = 5_000


def vocabularies(data_dir: Path) -> tuple[list[str], list[str]]:
    """English words and Chinese characters, as often as the train splits use them."""
    english: list[str] = []
    chinese: list[str] = []
    for spec in iter_specs():
        try:
            split = load_split(spec, "train", data_dir)
        except (DataNotFoundError, KeyError):
            continue
        for example in split.examples:
            for text in unit_texts(example):
                if spec.language == "zh":
                    chinese.extend(text)
                else:
                    english.extend(text.split())
    return english, chinese


def pool(english: list[str], chinese: list[str], rng: random.Random) -> list[Conversation]:
    def turn(zh: bool, low: int, high: int) -> str:
        size = rng.randint(low, high)
        return "".join(rng.choices(chinese, k=int(size * 1.5))) if zh else " ".join(rng.choices(english, k=size))

    out = []
    for number in range(POOL):
        zh = rng.random() < 0.3
        out.append(Conversation(f"pool-{number}", "synthetic", "qa", "zh" if zh else "en",
                                [(turn(zh, 80, 400), turn(zh, 20, 100))], f"synthetic.jsonl:{number + 1}"))
    return out


def mixture(conversations: int, base: list[Conversation], quotes: list[str], planted: int) -> Iterator[Conversation]:
    every = max(1, conversations // max(1, planted))
    for number, conversation in zip(range(conversations), itertools.cycle(base), strict=False):
        if planted and number % every == 0 and number // every < planted:
            quote = quotes[(number // every) % len(quotes)]
            yield replace(conversation, id=f"c{number}", turns=[(f"Question: {quote}", "answer")])
        else:
            yield replace(conversation, id=f"c{number}")


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("data_dir", nargs="?", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--conversations", type=int, default=200_000)
    parser.add_argument("--planted", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(0)
    english, chinese = vocabularies(args.data_dir)
    base = pool(english, chinese, rng)
    splits, missing = evaluation_splits(data_dir=args.data_dir)
    units = sum(len(split) for split in splits)
    # long units, so each planted quote is judged (not too short) and found whole
    quotes = [unit_texts(e)[0] for s in splits for e in s.examples if len(unit_texts(e)) == 1 and len(e.text) > 200]
    rng.shuffle(quotes)
    mixture_mb = sum(len(t.encode()) for c in base for turn in c.turns for t in turn) / len(base) * args.conversations / 1e6
    index_s, _ = timed(lambda: contamination_report([], splits))
    start = time.perf_counter()
    report = contamination_report(mixture(args.conversations, base, quotes, args.planted), splits, missing=missing)
    total_s = time.perf_counter() - start
    scan_s = total_s - index_s
    exact = sum(entry["exact"] for entry in report["sets"].values())
    ngram = sum(entry["ngram"] for entry in report["sets"].values())
    tokens = report["mixture"]["tokens"]
    print(f"evaluation splits: {len(splits)} sets, {units:,} units (missing: {', '.join(missing) or 'none'})")
    print(f"mixture: {report['mixture']['conversations']:,} conversations, {tokens:,} tokens, {mixture_mb:,.0f} MB of text")
    print(f"index of the evaluation splits: {index_s:.1f} s ({units / index_s:,.0f} units/s)")
    print(f"scan of the mixture: {scan_s:.1f} s ({args.conversations / scan_s:,.0f} conversations/s, "
          f"{tokens / scan_s / 1e6:.2f} M tokens/s, {mixture_mb / scan_s:.1f} MB/s)")
    print(f"whole report: {total_s:.1f} s; peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    print(f"planted quotes: {min(args.planted, args.conversations)}; units touched: {exact} exact, {ngram} by an n-gram "
          f"(a quote counts once per set holding its text: BC5CDR-Chem and -Dise share theirs)")


if __name__ == "__main__":
    main()
