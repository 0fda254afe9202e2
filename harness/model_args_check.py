"""Whether a value can travel inside lm-eval's `key=value,key=value` argument strings.

lm-eval splits `--model_args` and `--gen_kwargs` on `,` and `=`, so a model name, revision, URL,
adapter path or model_args value holding one of them is read as further settings
(`model: "dir,trust_remote_code=True"` would turn remote code on behind the config's back). A
newline or control character breaks the printed command line and, pasted into a file, the
file's structure. Baseline configs, preflight, `taiyi baseline new` and the fine-tuned adapter's
evaluation command (`taiyi_bench.finetune.adapter_eval`) ask `model_arg_problem`.
"""

from __future__ import annotations

import re
from typing import Any

_UNSAFE_CHARACTERS = re.compile(r"[,=\x00-\x1f\x7f]")
_NAMES = {",": "','", "=": "'='", "\n": "a newline", "\r": "a carriage return", "\t": "a tab"}


def model_arg_problem(setting: str, value: Any) -> str | None:
    """Why `value` (given as `setting`) cannot be passed as one lm-eval `key=value` item; None
    when it can (non-strings always can: numbers and booleans are written by the caller)."""
    if not isinstance(value, str):
        return None
    found = _UNSAFE_CHARACTERS.search(value)
    if found is None:
        return None
    character = _NAMES.get(found.group(), f"control character {found.group()!r}")
    return (
        f"{setting}: {value!r} contains {character}, which lm-eval's key=value,key=value model arguments cannot "
        "carry (it would be read as another setting)"
    )
