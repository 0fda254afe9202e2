"""Worst-case parse time: does `parse_output` stay linear in the length of the model output?

Each shape is an adversarial (or merely degenerate) output body of about n characters: the shapes a
review measured as super-linear, and the repeated mention small models produce when they loop until the
budget runs out. Every task type parses every shape after a task-specific key (`Chemical: `, `答案：`)
so that the body reaches the value-level rules too; `normalize_mention` times the normaliser alone.
Each cell prints the seconds at n, 2n and 4n (best of `--repeat`, cold caches) and the ratios
t(2n)/t(n), t(4n)/t(2n): about 2 is linear, 4 quadratic, 8 cubic. A cell slower than `--budget`
seconds is not grown further (`-`).

    python benchmarks/bench_parse_worst_case.py [--size 16384] [--repeat 3] [--budget 10]
        [--shapes comma_list,newline_run] [--tasks ner_en,qa_zh]
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from _timing import make_parser, timed

from taiyi_bench.harness import normalize, parsers
from taiyi_bench.harness.normalize import normalize_mention
from taiyi_bench.harness.parsers import parse_output
from taiyi_bench.harness.registry import get_spec


def _repeat_to(unit: str, n: int) -> str:
    return (unit * (n // len(unit) + 1))[:n]


def _half(n: int) -> int:
    return max(1, n // 2)


# Output bodies of about n characters. Keep the names stable: tests/test_parse_linear_time.py
# runs the same shapes.
SHAPES: dict[str, Callable[[int], str]] = {
    # CMeIE `_triple` tried every pair of commas of a group (with a string slice per pair).
    "comma_list": lambda n: "[" + _repeat_to("症状, ", n - 2) + "]",
    # The same list without the bracket, bare commas: a long value with many split points.
    "bare_commas": lambda n: _repeat_to("ab,", n),
    # The QA lone-lowercase-letter regex backtracked cubically over three adjacent `\s*`; the
    # arrow and conjunction splitters (RE, TC) re-scanned the run of spaces from each space.
    "lone_letter_spaces": lambda n: "a" + " " * (n - 2) + "x",
    # Openers never closed, then closers of another kind: `any(... for ... in stack)` per closer.
    "unbalanced_brackets": lambda n: "(" * _half(n) + "]" * _half(n),
    # Many answer cues on one line: every cue's segment is the rest of the line.
    "answer_cue_line": lambda n: _repeat_to("the answer is ", n),
    # Many answer cues on separate lines: every cue sliced the rest of the whole text.
    "answer_cue_lines": lambda n: _repeat_to("answer\n", n),
    # Dense one-character cues ("选"), each followed by a different letter.
    "dense_cues_zh": lambda n: "".join("选" + "abcdefghijklmnopqrstuvwxyz"[i % 26] for i in range(n // 2)),
    # `^\s*```` re-scanned the whole rest of a whitespace run from every line start in it.
    "newline_run": lambda n: "x" + "\n" * (n - 2) + "y",
    # `_strip_edges` peeled one wrapping pair per pass, re-scanning and re-slicing each time.
    "nested_brackets": lambda n: "(" * _half(n - 1) + "x" + ")" * _half(n - 1),
    # Edge punctuation and unmatched closers were also stripped one slice at a time.
    "edge_punctuation": lambda n: "." * _half(n) + "x" + ")" * _half(n),
    # Open quotes never closed: the quoted-list regex scanned to the end from each one.
    "open_quotes": lambda n: "“" + _repeat_to("a“", n - 1),
    # What SmolLM2 really does: repeat one mention until the budget runs out (each ", " copied
    # the rest of the value to look at the character after it).
    "repeated_mention": lambda n: _repeat_to("aspirin, ", n),
    # ... and the Chinese form, with full-width separators and a bracketed pair.
    "repeated_pair_zh": lambda n: _repeat_to("[肺炎，发热]；", n),
    # Plain prose on one long line: every space is looked at by the normaliser and the splitters.
    "prose": lambda n: _repeat_to("the patient was given aspirin and heparin for chest pain, ", n),
}


@dataclass(frozen=True)
class Target:
    """One task type: the set, a key put before the body, and QA options."""

    spec_key: str
    prefix: str = ""
    options: Mapping[str, str] | None = None


_US_OPTIONS = {"A": "Aspirin", "B": "Tell the attending", "C": "B cells", "D": "Aspirin and heparin", "E": "None"}
_ZH_OPTIONS = {"A": "阿司匹林", "B": "肝素", "C": "选择性β受体阻滞剂", "D": "华法林", "E": "以上都不是"}

TARGETS: dict[str, Target] = {
    "ner_en": Target("bc5cdr_chem", "Chemical: "),
    "ner_zh": Target("cmeee", "疾病："),
    "re_cid": Target("bc5cdr_re", "CID: "),
    "re_cmeie_keyed": Target("cmeie", "临床表现："),
    "re_cmeie_keyless": Target("cmeie", ""),  # the keyless triple reading `(subject, predicate, object)`
    "tc_multi": Target("hoc", "Result: "),
    "tc_single": Target("kuake_qic", "结果："),
    "qa_en": Target("medqa_usmle", "The answer is ", _US_OPTIONS),
    "qa_zh": Target("medqa_mcmle", "答案：", _ZH_OPTIONS),
    "qa_yes_no": Target("pubmedqa", "Answer: "),
    "normalize_mention": Target(""),  # the normaliser alone, on the bare body
}


def cold_caches() -> None:
    """Forget every memo a previous parse left (normalisation and label resolution), keeping
    the built resolvers, so that a repeated parse does the work again."""
    normalize.normalize_mention.cache_clear()
    normalize.normalize_label.cache_clear()
    for resolver in (*normalize._RESOLVERS.values(), *parsers._RE_RESOLVERS.values()):
        resolver._cache.clear()


def parse_once(target: Target, body: str) -> object:
    if not target.spec_key:
        return normalize_mention(body)
    return parse_output(get_spec(target.spec_key), target.prefix + body, options=target.options)


def time_parse(target: Target, body: str, repeat: int) -> float:
    """Best of `repeat` cold parses, in seconds."""
    parse_once(target, "warm-up")  # builds the resolvers outside the timing
    return timed(lambda: parse_once(target, body), repeat, before=cold_caches)[0]


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--size", type=int, default=16384, help="n, in characters of the output body")
    parser.add_argument("--repeat", type=int, default=3, help="parses per measurement; the fastest is reported")
    parser.add_argument("--budget", type=float, default=10.0, help="seconds above which a cell is not grown further")
    parser.add_argument("--shapes", default="", help=f"comma-separated (default: all of {', '.join(SHAPES)})")
    parser.add_argument("--tasks", default="", help=f"comma-separated (default: all of {', '.join(TARGETS)})")
    args = parser.parse_args(argv)
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()] or list(SHAPES)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] or list(TARGETS)
    unknown = [s for s in shapes if s not in SHAPES] + [t for t in tasks if t not in TARGETS]
    if unknown:
        parser.error(f"unknown shape or task: {', '.join(unknown)}")

    n = args.size
    sizes = "".join(f"{f't({k * n})':>12}" for k in (1, 2, 4))
    header = f"{'shape':<20}{'task':<19}{sizes}{'2n/n':>8}{'4n/2n':>8}"
    print(f"seconds per parse, best of {args.repeat}; n = {n:,} characters of output body")
    print(header)
    print("-" * len(header))
    worst = 0.0
    for shape in shapes:
        for task in tasks:
            times: list[float | None] = []
            for size in (n, 2 * n, 4 * n):
                if times and (times[-1] is None or times[-1] > args.budget):
                    times.append(None)
                    continue
                times.append(time_parse(TARGETS[task], SHAPES[shape](size), args.repeat))
            cells = "".join(f"{t:>12.4f}" if t is not None else f"{'-':>12}" for t in times)
            ratios = ""
            for small, big in zip(times, times[1:], strict=False):
                ratio = big / small if small and big is not None else None
                ratios += f"{ratio:>8.2f}" if ratio is not None else f"{'-':>8}"
                if ratio is not None and small > 1e-3:  # ratios of sub-millisecond timings are noise
                    worst = max(worst, ratio)
            print(f"{shape:<20}{task:<19}{cells}{ratios}", flush=True)
    print(f"\nworst growth ratio (timings over 1 ms): {worst:.2f}; python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
