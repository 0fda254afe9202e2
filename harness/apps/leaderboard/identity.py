"""Run identity: a run's model plus every setting that changes its numbers (`RunVariant`), and how
a column header names it. Runs that differ in any setting are never merged; each variant gets a
column of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taiyi_bench.harness.provenance import folder_model_name, is_machine_path
from taiyi_bench.harness.registry import REGISTRY

if TYPE_CHECKING:  # parse.py imports this module
    from taiyi_bench.harness.apps.leaderboard.parse import RunFile, TaskResult

# The prompt formats a run without `prompt_format` in its --model_args gets (`chat_template` when
# lm-eval applied a chat template, else `plain`): a header names them only when a model's columns
# differ in format. Any other format is always named.
DEFAULT_PROMPT_FORMATS = ("chat_template", "plain")
# Variant parts that get a label only when a model's columns differ in them (the rest always do
# when not the default): a column label names what sets it apart, the provenance says the rest.
_CONTEXTUAL_PARTS = ("format", "version", "budget", "scoring")


@dataclass(frozen=True)
class RunVariant:
    """Every setting of a run, besides its model, that changes its numbers. Run-level (one value
    per results file), so one run is never split over several columns."""

    shots: tuple[int, ...] = (0,)
    # (registry key, value) for every set evaluated in a form other than its default one, read
    # from the variant record the results carry. A set in its default form, or absent, adds
    # nothing: the other sets do not depend on it, so a rerun of some sets still merges.
    set_forms: tuple[tuple[str, Any], ...] = ()
    prompt_formats: tuple[str, ...] = ()  # empty for discriminative models
    prompt_versions: tuple[str, ...] = ()
    chat_template: bool = False
    # ("task",): each set's own budget; ("gen_kwargs", 512, ...): a global override (the budgets
    # used); ("unknown",): not recorded. Whether a budget was actually cut depends on the set, so
    # it is a property of the column's cells: a full run and a rerun of a few sets under the same
    # override are the same variant.
    budget: tuple[Any, ...] = ("task",)
    thinking_allowance: int = 0
    # The scoring-rules version(s) recorded: outputs scored under other rules are other numbers.
    scoring_rules: tuple[str, ...] = ()

    def sort_key(self) -> tuple:
        return (
            self.shots, tuple((key, str(value)) for key, value in self.set_forms), self.prompt_formats, self.prompt_versions,
            # Each set's own budget first, then unrecorded, then overrides by value.
            self.chat_template, ("task", "unknown", "gen_kwargs").index(self.budget[0]), self.budget_overrides,
            self.thinking_allowance, self.scoring_rules,
        )

    @property
    def budget_overrides(self) -> tuple[int, ...]:
        """The global max_gen_toks value(s) the run used, if any."""
        return tuple(self.budget[self.budget.index("gen_kwargs") + 1 :]) if "gen_kwargs" in self.budget else ()

    def mismatches_published(self, *, budget_cut: bool) -> list[str]:
        """Why numbers of this variant cannot be set against the published ones (zero-shot, each
        set in its default form, each set's own budget); an empty list when they can."""
        reasons = []
        if self.shots != (0,):
            reasons.append(f"{shots_text(self.shots)} (the published numbers are zero-shot)")
        for key, value in self.set_forms:
            spec = REGISTRY[key]
            reasons.append(f"{spec.display_name} {form_name(key, value)} (the published numbers are "
                           f"on its default form, {spec.variant_option}={spec.variant_value})")
        if budget_cut:
            reasons.append("budget cut (the published numbers had each set's full answer length)")
        return reasons


def run_variant(run: RunFile) -> RunVariant:
    """The variant of one results file, from its sets' results."""
    results = list(run.tasks.values())
    generative = [r for r in results if r.prompt_format is not None]
    return RunVariant(
        shots=tuple(sorted({r.n_shot or 0 for r in results})) or (0,),
        set_forms=tuple(sorted(
            (r.key, r.variant_value) for r in results
            if r.variant_value is not None and r.variant_value != REGISTRY[r.key].variant_value
        )),
        prompt_formats=tuple(sorted({r.prompt_format for r in generative if r.prompt_format})),
        prompt_versions=tuple(sorted({version_text(r.version) for r in results})),
        chat_template=run.chat_template,
        budget=_budget(run, generative),
        thinking_allowance=max((r.thinking_allowance for r in results), default=0),
        scoring_rules=tuple(sorted({str(v) for r in results if (v := r.provenance.get("scoring_rules_version")) is not None})),
    )


def _budget(run: RunFile, generative: Sequence[TaskResult]) -> tuple[Any, ...]:
    if any(r.budget_cut is None for r in generative):
        return ("unknown",) if run.gen_kwargs_max_gen_toks is None else ("unknown", "gen_kwargs", run.gen_kwargs_max_gen_toks)
    if any(r.budget_overridden for r in generative):
        return ("gen_kwargs", *sorted({r.budget_effective or 0 for r in generative if r.budget_overridden}))
    return ("task",)


def version_text(version: str | None) -> str:
    """A prompt version as one form: lm-eval's `versions` says 1.0 where the metadata says 1."""
    if version is None:
        return "?"
    try:
        number = float(version)
    except ValueError:
        return version
    return str(int(number)) if number.is_integer() else version


def shots_text(shots: Sequence[int]) -> str:
    return "/".join(str(k) for k in shots) + "-shot"


def form_name(key: str, value: Any, *, short: bool = False) -> str:
    """How a set's non-default form is named: the registry Variant's `name` or its header
    `label`; `option=value` for a value the registry does not know."""
    spec = REGISTRY[key]
    variant = spec.variants.get(value)
    if variant is None:
        return f"{spec.variant_option}={value}"
    return variant.label if short else variant.name


def short_model(model: str) -> str:
    """A model's name in a header: its recorded identity's name already is one; a path (files
    written before identities were recorded) is named as its folder; hub ids ("org/name") whole."""
    return folder_model_name(Path(model)) if is_machine_path(model) else model


def varying_parts(variants: Sequence[RunVariant]) -> set[str]:
    """The contextual parts in which one model's column variants differ (those get labels)."""
    parts = [{"format": (v.prompt_formats, v.chat_template), "version": v.prompt_versions,
              "budget": v.budget, "scoring": v.scoring_rules} for v in variants]
    varies = {name for name in _CONTEXTUAL_PARTS if len({repr(p[name]) for p in parts}) > 1}
    # Files from before the version was recorded differ in that alone: labelled only when two
    # recorded versions differ (their other labels, such as "budget not recorded", tell them apart).
    if len({p["scoring"] for p in parts if p["scoring"]}) < 2:
        varies.discard("scoring")
    if len({v.budget_overrides for v in variants if v.budget_overrides}) > 1:
        varies.add("override")  # two overrides of one model: the labels say which
    return varies


def label_suffixes(variant: RunVariant, *, budget_cut: bool, varies: set[str]) -> list[str]:
    """Short variant labels for a column header, e.g. ["1-shot", <a Variant's label>, "eod", "budget cut"]."""
    parts: list[str] = []
    if variant.shots != (0,):
        parts.append(shots_text(variant.shots))
    parts.extend(form_name(key, value, short=True) for key, value in variant.set_forms)
    parts += [name.replace("_", " ") for name in variant.prompt_formats if name not in DEFAULT_PROMPT_FORMATS or "format" in varies]
    if variant.chat_template and variant.prompt_formats and "chat_template" not in variant.prompt_formats:
        parts.append("+ chat template")
    if "version" in varies:
        parts.append("prompt v" + "/".join(variant.prompt_versions))
    overrides = "/".join(str(v) for v in variant.budget_overrides)
    if budget_cut:
        parts.append(f"budget cut to {overrides}" if "override" in varies and overrides else "budget cut")
    elif overrides:
        parts.append(f"max_gen_toks {overrides}")
    elif variant.budget == ("unknown",) and "budget" in varies:
        parts.append("budget not recorded")
    if variant.thinking_allowance:
        parts.append(f"+{variant.thinking_allowance} thinking")
    if "scoring" in varies:
        parts.append("scoring rules v" + "/".join(variant.scoring_rules) if variant.scoring_rules else "scoring rules not recorded")
    return parts


def variant_id(variant: RunVariant) -> str:
    """The variant in a column key: every part, so no two variants share one."""
    return ";".join([
        shots_text(variant.shots), "forms=" + ",".join(f"{k}:{v}" for k, v in variant.set_forms), "format=" + "/".join(variant.prompt_formats),
        f"chat={int(variant.chat_template)}", "prompt=" + "/".join(variant.prompt_versions),
        "budget=" + "/".join(str(b) for b in variant.budget), f"thinking={variant.thinking_allowance}",
        "scoring=" + "/".join(variant.scoring_rules),
    ])
