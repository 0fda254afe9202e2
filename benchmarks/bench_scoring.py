"""Parse + score throughput (units/s) on the full eval splits, per task.

Times `parse_output` + `score_unit` + `aggregate` on each unit's gold rendered in the Taiyi format, as:
  oracle  the rendered gold (its score, printed, must be 1.0);
  noisy   the answer as chat models write it: a chatter line, markdown numbering and bold keys,
          full-width colons, an explanation after it;
  garbage a sentence with no answer in it (the parse-failure path).
Caches (normalisation, label resolution) are cleared before each run, so the numbers include warm-up.
Without a data directory ($TAIYI_DATA_DIR or --data-dir) it runs on the bundled samples and says so.

    python benchmarks/bench_scoring.py [--data-dir DIR] [--repeat N] [--tasks bc5cdr_chem,hoc]
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable

from _timing import make_parser, timed

from taiyi_bench.harness import normalize
from taiyi_bench.harness.loading import load_split
from taiyi_bench.harness.parsers import parse_output
from taiyi_bench.harness.prompts import render_answer
from taiyi_bench.harness.records import Example
from taiyi_bench.harness.registry import DatasetSpec, iter_specs
from taiyi_bench.harness.scoring import aggregate, score_unit

_KEY_LINE = re.compile(r"^([^:：\n]{1,40})[:：]\s*", re.M)


def noisy(spec: DatasetSpec, answer: str) -> str:
    """The oracle answer dressed as a chat model would write it."""
    if spec.task_type == "qa":
        return f"After considering each option, the correct answer is ({answer[:1]}).\nThe others are less likely."
    lines = [line for line in answer.split("\n") if line.strip()]
    dressed = [f"{i}. **{m.group(1)}**：{line[m.end():]}" if (m := _KEY_LINE.match(line)) else line
               for i, line in enumerate(lines, start=1)]
    chatter = "以下是答案：" if spec.language == "zh" else "Sure! Here is my answer:"
    note = "说明：以上结果根据文本得出。" if spec.language == "zh" else "Explanation: these follow from the text above."
    return "\n".join([chatter, *dressed, "", note])


def garbage(spec: DatasetSpec, answer: str) -> str:
    return "I am sorry, but I cannot help with that request." if spec.language == "en" else "抱歉，我无法回答这个问题。"


def _clear_caches() -> None:
    normalize.normalize_mention.cache_clear()
    normalize.normalize_label.cache_clear()
    normalize._RESOLVERS.clear()


def run(spec: DatasetSpec, examples: list[Example], outputs: list[str], repeat: int) -> tuple[float, float]:
    """(units per second, headline score), fastest of `repeat` passes."""

    def score() -> float:
        pairs = zip(examples, outputs, strict=True)
        units = [score_unit(spec, ex, parse_output(spec, text, options=ex.options or None)) for ex, text in pairs]
        return aggregate(spec, units)["score"]

    best, headline = timed(score, repeat, before=_clear_caches)
    return len(examples) / best if best > 0 else float("inf"), headline


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--data-dir", default=os.environ.get("TAIYI_DATA_DIR"))
    parser.add_argument("--repeat", type=int, default=3, help="passes per measurement; the fastest is reported")
    parser.add_argument("--tasks", default="", help="comma-separated set keys (default: all)")
    args = parser.parse_args(argv)
    wanted = {t.strip().removeprefix("taiyi_") for t in args.tasks.split(",") if t.strip()}

    variants: dict[str, Callable[[DatasetSpec, str], str]] = {
        "oracle": lambda _spec, answer: answer, "noisy": noisy, "garbage": garbage,
    }
    header = f"{'task':<20}{'units':>7}{'source':>9}" + "".join(f"{v + ' u/s':>14}{'score':>8}" for v in variants)
    print(header)
    print("-" * len(header))
    total_units = 0
    for spec in iter_specs():
        if wanted and spec.key not in wanted:
            continue
        try:
            loaded = load_split(spec.key, data_dir=args.data_dir)
        except Exception as err:  # a missing set is reported, the others still run
            print(f"{spec.task_name:<20}  skipped: {type(err).__name__}: {str(err).splitlines()[0][:80]}")
            continue
        examples = loaded.examples
        answers = [render_answer(loaded.spec, ex) for ex in examples]
        row = f"{spec.task_name:<20}{len(examples):>7}{loaded.source:>9}"
        for make in variants.values():
            rate, score = run(loaded.spec, examples, [make(loaded.spec, answer) for answer in answers], args.repeat)
            row += f"{rate:>14,.0f}{score:>8.3f}"
        total_units += len(examples)
        print(row, flush=True)
    if args.data_dir is None:
        print("\nNOTE: no data directory given: these are the BUNDLED SAMPLES, not the real eval splits.")
    print(f"\n{total_units} units; python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
