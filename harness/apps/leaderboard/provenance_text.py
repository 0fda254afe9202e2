"""A run column's provenance in words: which files, run how, on which data, scored by what."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timezone
from pathlib import Path

from taiyi_bench.harness.apps.leaderboard.identity import form_name, shots_text
from taiyi_bench.harness.apps.leaderboard.parse import RunFile, TaskResult, display_path
from taiyi_bench.harness.registry import PAPER_ORDER, REGISTRY

_DEMO_TEXT = {"data": "demonstrations from the train split of the data",
              "samples": "demonstrations from the BUNDLED SAMPLES, not official data"}


def provenance(model: str, chosen: dict[str, TaskResult], skipped: dict[str, str] | None = None) -> list[str]:
    """One sentence per results file the column reads, then the sets skipped when run."""
    by_run: dict[Path, list[TaskResult]] = {}
    for key in PAPER_ORDER:
        if key in chosen:
            by_run.setdefault(chosen[key].run.path, []).append(chosen[key])
    lines = [f"Run of {model}."]
    for results in by_run.values():
        run = results[0].run
        sets = "all sets" if len(results) == len(PAPER_ORDER) else ", ".join(REGISTRY[r.key].display_name for r in results)
        lines.append(f"{display_path(run.path)} ({sets}): " + "; ".join(_run_parts(run, results)) + ".")
    if skipped:
        listed = ", ".join(
            REGISTRY[k].display_name + (f" ({skipped[k]})" if skipped[k] else "") for k in PAPER_ORDER if k in skipped
        )
        lines.append(f"Skipped when run (shown as missing, not as zero): {listed}.")
    return lines


def _run_parts(run: RunFile, results: Sequence[TaskResult]) -> list[str]:
    date = run.date.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if run.date else run.date_id or "unknown date"
    parts = [f"date {date}", f"lm-eval {run.lm_eval_version or 'version not recorded'}"]
    model_args = run.model_args if len(run.model_args) <= 160 else run.model_args[:157] + "..."
    parts += [f"{name} {value}" for name, value in (("transformers", run.transformers_version), ("git", run.git_hash),
              ("backend", run.backend), ("model_args", model_args), ("revision", run.model_revision)) if value]
    parts.append(_scorer_text(results))
    formats = sorted({r.prompt_format for r in results if r.prompt_format})
    if formats:
        parts.append("prompt format " + "/".join(formats) + (" (chat template applied)" if run.chat_template else ""))
    parts.append("prompt version " + "/".join(sorted({r.version or "?" for r in results})))
    demos = sorted({r.fewshot_source for r in results if r.fewshot_source})
    parts.append(shots_text(sorted({r.n_shot or 0 for r in results})) + "".join(f", {_DEMO_TEXT[d]}" for d in demos))
    parts.extend(f"{REGISTRY[r.key].display_name} {form_name(r.key, r.variant_value)}"
                 for r in results if r.variant_value is not None)
    parts.append(_data_text(results))
    parts.append(_budget_text(run, results))
    limited = [r for r in results if r.limited]
    if limited:
        parts.append("LIMITED: " + ", ".join(f"{r.task} {r.n_effective}/{r.n_original}" for r in limited))
    elif run.tasks and any(r.limit is not None for r in results):
        parts.append("limit set but no units dropped")
    else:
        parts.append("no limit")
    files = _data_files_text(results)
    if files:
        parts.append(files)
    if run.legacy_layout:
        parts.append("older lm-eval layout")
    return parts


def _data_text(results: Sequence[TaskResult]) -> str:
    splits = "/".join(sorted({REGISTRY[r.key].eval_split for r in results}))
    data_text = {"data": "official data", "samples": f"BUNDLED SAMPLES, not the {splits} splits", "unknown": "data source not recorded"}
    not_official = [r for r in results if r.data_problem]
    if not_official:
        data_text["data"] = "data directory, NOT the official split for " + ", ".join(
            f"{REGISTRY[r.key].display_name} ({r.data_problem}"
            + (f": {r.eval_units} of {r.expected_units} units" if r.data_problem == "incomplete"
               and None not in (r.eval_units, r.expected_units) else "") + ")"
            for r in not_official
        )
    return "data: " + ", ".join(data_text[s] for s in sorted({r.data_source for r in results}))


def _scorer_text(results: Sequence[TaskResult]) -> str:
    """Which taiyi-bench scored the run: version, commit, scoring rules version."""
    seen: dict[str, None] = {}  # each text once, in order
    for result in results:
        prov = result.provenance
        if not prov:
            continue
        text = f"taiyi-bench {prov.get('taiyi_bench_version') or 'version not recorded'}"
        commit = prov.get("git_commit")
        if commit:
            text += f" (commit {str(commit)[:12]}{', uncommitted changes' if prov.get('git_dirty') else ''})"
        if prov.get("scoring_rules_version") is not None:
            text += f", scoring rules v{prov['scoring_rules_version']}"
        seen[text] = None
    return " / ".join(seen) if seen else "taiyi-bench version and scoring rules not recorded"


def _budget_text(run: RunFile, results: Sequence[TaskResult]) -> str:
    generative = [r for r in results if r.prompt_format is not None]
    if not generative:
        return "no generation budget (discriminative model)"
    thinking = max((r.thinking_allowance for r in generative), default=0)
    allowance = f", plus a thinking allowance of {thinking} tokens" if thinking else ""
    if any(r.budget_cut is None for r in generative):
        if run.gen_kwargs_max_gen_toks is not None:
            return f"generation budget not recorded per set; gen_kwargs max_gen_toks={run.gen_kwargs_max_gen_toks} applied to every set"
        return "generation budget not recorded"
    cut = [r for r in generative if r.budget_cut]
    if cut:
        listed = ", ".join(f"{REGISTRY[r.key].display_name} {r.budget_effective} of {r.budget_task}" for r in cut)
        return f"BUDGET CUT (max_gen_toks used of the set's own): {listed}{allowance}"
    overridden = sorted({r.budget_effective for r in generative if r.budget_overridden and r.budget_effective is not None})
    if overridden:
        return "max_gen_toks " + "/".join(map(str, overridden)) + f" on every set (no set's own budget cut){allowance}"
    return f"each set's own generation budget{allowance}"


def _data_files_text(results: Sequence[TaskResult]) -> str:
    """The data files read and the first 12 hex digits of their sha256."""
    files: dict[str, str] = {}
    for result in results:
        recorded = result.provenance.get("data_files")
        if isinstance(recorded, dict):
            for name, digest in recorded.items():
                files[str(name)] = str(digest)[:12] if digest else "unreadable"
    if not files:
        return ""
    return "data files (sha256): " + ", ".join(f"{name} {digest}" for name, digest in sorted(files.items()))


def exclusion_notes(
    chosen: dict[str, TaskResult], budget_cut: bool, include_budget_cut: bool, include_incomplete: bool
) -> list[str]:
    """Why some cells of a column are (or, when asked, are not) left out of its averages."""
    notes = []
    data_problems = sorted({r.data_problem for r in chosen.values() if r.data_problem})
    if data_problems:
        notes.append(
            f"Cells marked ({') or ('.join(data_problems)}) were read from data files that are not the official split "
            "(another unit count, or another checksum); "
            + ("they are counted in the averages (--include-incomplete)." if include_incomplete
               else "averages over them are left empty (--include-incomplete counts them).")
        )
    if budget_cut:
        notes.append(
            "Cells marked (budget cut) were generated with less than their set's own budget; "
            + ("they are counted in the averages (--include-budget-cut)." if include_budget_cut
               else "averages over them are left empty (--include-budget-cut counts them).")
        )
    return notes
