"""A check for a value that travels inside lm-eval's `key=value,key=value` argument strings.

lm-eval splits `--model_args` and `--gen_kwargs` on `,` and `=`, so a model name, revision, URL,
adapter path or model_args value holding one of them is read as further settings
(`model: "dir,trust_remote_code=True"` would turn remote code on behind the config's back). A
newline or control character has no business in any of them either: it breaks the printed
command line and, pasted into a file, the file's structure. Baseline configs, preflight and
`taiyi baseline new` all ask `reference_problem`. It is not the only such check:
`taiyi_bench.harness.prompt_formats.finetune_eval_command` refuses a `,` or `=` in the model_args it builds
for a fine-tuned adapter on its own.
"""

from __future__ import annotations

import re
from typing import Any

_UNSAFE_CHARACTERS = re.compile(r"[,=\x00-\x1f\x7f]")
_NAMES = {",": "','", "=": "'='", "\n": "a newline", "\r": "a carriage return", "\t": "a tab"}


def reference_problem(setting: str, value: Any) -> str | None:
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
