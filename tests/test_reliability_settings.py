"""Settings a user can get wrong: the fine-tuning recipe (`taiyi_bench.finetune.config.SCHEMA`), the demo's
options, a conversation file that is not UTF-8, lm-eval's `--metadata thinking_allowance`.

Each case was once a run that "succeeded" with a wrong result (`max_steps: -1` trained 0 steps and
marked the adapter finished; `data.cap: -5` dropped samples through a slice), a traceback, or a
message without the setting's name. Each test asserts: a non-zero exit status, exactly one error
line naming the setting (or the file and line), no traceback, and that no work was done. The
recipe cases run both as `--dry-run` and as the real run: the two refuse the same recipes.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from taiyi_bench.harness.errors import ConfigError, DataFormatError

from cli_runs import one_error, run_taiyi

# A recipe that would run, small: each case below changes one thing in it.
GOOD_RECIPE = """\
name: settings-test
model: {base: local:smollm2}
data: {cap: 2, tasks: {names: [hoc]}}
training: {max_steps: 1, progress: false}
"""

CONVERSATION = {
    "conversation_id": "c1",
    "dataset": "gbk-set",
    "category": "qa",
    "language": "zh",
    "conversation": [{"human": "什么是高血压？", "assistant": "血压持续高于正常值。"}],
}


# ------------------------------------------------------------------------------ helpers


def _cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    return run_taiyi(capsys, *argv)


def _one_error(err: str, command: str) -> str:
    return one_error(err, f"taiyi {command}: error:")


def _recipe(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _finetune(capsys: pytest.CaptureFixture, recipe: Path, mode: str, out: Path, *extra: str) -> tuple[int, str, str]:
    """`taiyi finetune RECIPE` as a dry run or as the real run into `out`."""
    argv = ["finetune", recipe, *extra]
    argv += ["--dry-run"] if mode == "dry-run" else ["--output-dir", out]
    return _cli(capsys, *argv)


def _assert_refused(code: int, out: str, err: str, run_dir: Path, *fragments: str) -> str:
    """Refused: non-zero, one error line holding every fragment, nothing printed as a result
    (no resolved config, no data report), and no run directory (so no adapter marked finished)."""
    assert code != 0, err
    line = _one_error(err, "finetune")
    for fragment in fragments:
        assert fragment in line, line
    assert out == "", out
    assert not run_dir.exists()
    return line


MODES = ("dry-run", "run")


# ============================================================================== recipe values


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        pytest.param(
            "training: {max_steps: -1}",
            "training.max_steps must be a whole number >= 1, or null (train for stages.N.epochs), not -1",
            id="max_steps=-1",
        ),
        pytest.param("training: {max_steps: 0}", "training.max_steps must be a whole number >= 1", id="max_steps=0"),
        pytest.param("training: {learning_rate: 0}", "training.learning_rate must be a number > 0, not 0", id="lr=0"),
        pytest.param(
            "data: {cap: -5}", "data.cap must be a whole number >= 1, or null (no cap), not -5", id="cap=-5"
        ),
        pytest.param(
            "data: {datasets: {hoc: {cap: -5}}}", "data.datasets.hoc.cap must be a whole number >= 1", id="dataset-cap=-5"
        ),
    ],
)
def test_out_of_range_recipe_values_are_refused_naming_the_key(tmp_path, capsys, section, fragment, mode):
    recipe = _recipe(tmp_path, GOOD_RECIPE + section + "\n")
    run_dir = tmp_path / "run"
    _assert_refused(*_finetune(capsys, recipe, mode, run_dir), run_dir, fragment)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        pytest.param("training: null", "training must be a mapping with keys per_device_batch_size,", id="training-null"),
        pytest.param("stages: [1, 2]", "stages must be a mapping with keys 1, 2, not [1, 2]", id="stages-list"),
        pytest.param("lora: 5", "lora must be a mapping with keys r, alpha, dropout", id="lora-5"),
        pytest.param("stages: {2: null}", "stages.2 must be a mapping with keys epochs, init_adapter", id="stage-null"),
        pytest.param(
            "training: {learing_rate: 0.1}",
            "unknown recipe key training.learing_rate; known here: per_device_batch_size,",
            id="unknown-key",
        ),
    ],
)
def test_a_section_of_the_wrong_shape_is_refused(tmp_path, capsys, section, fragment, mode):
    # `training: null` replaced the whole section: the dry run passed, the real run crashed.
    text = GOOD_RECIPE.replace("training: {max_steps: 1, progress: false}\n", "") + section + "\n"
    run_dir = tmp_path / "run"
    line = _assert_refused(*_finetune(capsys, _recipe(tmp_path, text), mode, run_dir), run_dir, fragment)
    if "unknown" in fragment:
        assert "learning_rate" in line  # the known keys are listed


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        pytest.param("training: {max_steps: two}", "training.max_steps must be a whole number >= 1", id="max_steps=two"),
        pytest.param("format: {max_length: two}", "format.max_length must be a whole number >= 8, not 'two'", id="max_length=two"),
        pytest.param(
            "training: {per_device_batch_size: 2.5}",
            "training.per_device_batch_size must be a whole number >= 1, not 2.5",
            id="batch=2.5",
        ),
        pytest.param("training: {max_steps: 1.5e0}", "training.max_steps must be a whole number", id="max_steps=1.5e0"),
        pytest.param("training: {learning_rate: fast}", "training.learning_rate must be a number > 0, not 'fast'", id="lr=fast"),
    ],
)
def test_a_non_integer_where_an_integer_is_expected_names_the_key(tmp_path, capsys, section, fragment, mode):
    # These were `invalid literal for int() with base 10: 'two'`, with no key named.
    text = GOOD_RECIPE.replace("training: {max_steps: 1, progress: false}\n", "") + section + "\n"
    run_dir = tmp_path / "run"
    line = _assert_refused(*_finetune(capsys, _recipe(tmp_path, text), mode, run_dir), run_dir, fragment)
    assert "invalid literal" not in line


def test_an_integral_float_is_read_as_that_integer(tmp_path, capsys):
    """The documented choice: `1e9` (a string to YAML 1.1) or `2.0` where a whole number is
    expected is that integer, saved as one; 2.5 is refused (above)."""
    text = GOOD_RECIPE.replace("cap: 2", "cap: 1e9").replace("max_steps: 1", "max_steps: 2.0")
    code, out, err = _finetune(capsys, _recipe(tmp_path, text), "dry-run", tmp_path / "run")
    assert code == 0, err
    resolved = next(yaml.safe_load_all(out.split("\n{", 1)[0]))
    assert resolved["data"]["cap"] == 1_000_000_000 and resolved["training"]["max_steps"] == 2
    assert isinstance(resolved["training"]["max_steps"], int)


def test_overrides_go_through_the_same_schema(capsys, tmp_path):
    run_dir = tmp_path / "run"
    for override, fragment in (
        ("training.max_steps=-1", "training.max_steps must be a whole number >= 1"),
        ("training=null", "training must be a mapping"),
        ("stages.stage1.init_adapter=stage1", "stages.1.init_adapter cannot be stage1"),
        ("data.tasks.names=[no_such_set]", "data.tasks.names: unknown set 'no_such_set'"),
    ):
        for mode in MODES:
            code, out, err = _finetune(capsys, "cpu_smollm2_tiny", mode, run_dir, "-o", override)
            _assert_refused(code, out, err, run_dir, fragment)


def test_train_refuses_a_bad_config_built_in_code_before_any_work(tmp_path):
    """`train(config)` validates again: a config changed after `load_recipe` is refused before
    the run directory exists, so no stage can be marked finished after 0 steps."""
    from taiyi_bench.finetune.config import load_recipe
    from taiyi_bench.finetune.train import train

    config = load_recipe(_recipe(tmp_path, GOOD_RECIPE))
    config["training"]["max_steps"] = -1
    with pytest.raises(ConfigError, match=r"training\.max_steps must be a whole number >= 1"):
        train(config, output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_negative_cap_never_reaches_the_slice():
    from taiyi_bench.finetune import data

    conversations = [data.Conversation(id=str(i), dataset="d", category="qa", language="en",
                                       turns=[("q", "a")], origin=f"x:{i}") for i in range(10)]
    with pytest.raises(ConfigError, match="must be a whole number >= 1"):
        data.build_mixture({"d": (conversations, "x")}, 2, cap=-5)


# ============================================================================== a file not in UTF-8


def _gbk_file(folder: Path, bad_line: int = 3) -> Path:
    """A conversations file whose line `bad_line` is GBK-encoded (a Windows export), the rest UTF-8."""
    line = json.dumps(CONVERSATION, ensure_ascii=False)
    lines = [(line.encode("gbk") if number == bad_line else line.encode("utf-8")) for number in range(1, 5)]
    path = folder / "conversations_gbk.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_a_gbk_line_is_named_by_file_and_line_number(tmp_path):
    from taiyi_bench.finetune.data import read_conversations

    path = _gbk_file(tmp_path, bad_line=3)
    with pytest.raises(DataFormatError) as caught:
        read_conversations(path)
    assert caught.value.path == str(path) and caught.value.location == 3
    assert "expected UTF-8 text" in str(caught.value) and "byte 0x" in str(caught.value)


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    from taiyi_bench.harness.random_models import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm") / "lm", seed=0)


@pytest.mark.parametrize("mode", MODES)
def test_a_gbk_conversation_file_is_one_line_in_dry_run_and_real_run(tmp_path, capsys, tiny_lm, mode):
    path = _gbk_file(tmp_path, bad_line=3)
    recipe = _recipe(tmp_path, f"""\
name: gbk
model: {{base: {tiny_lm}}}
format: {{max_length: 64}}
data: {{tasks: {{names: []}}, files: [{path}]}}
training: {{max_steps: 1, progress: false, num_threads: 1}}
""")
    run_dir = tmp_path / "run"
    code, out, err = _finetune(capsys, recipe, mode, run_dir)
    assert code != 0
    line = _one_error(err, "finetune")
    assert f"{path}, line 3: expected UTF-8 text; found byte 0x" in line, line
    # the real run reads the data after opening its folder: nothing in it may look finished
    assert not list(run_dir.glob("stage*/adapter"))


# ============================================================================== the demo's options


@pytest.mark.parametrize(
    ("argv", "option", "fragment"),
    [
        (["--units", "0"], "--units", "expected a whole number >= 1, not 0"),
        (["--units", "-1"], "--units", "expected a whole number >= 1, not -1"),
        (["--max-gen-toks", "0"], "--max-gen-toks", "expected a whole number >= 1, not 0"),
        (["--finetune-steps", "-3"], "--finetune-steps", "expected a whole number >= 1, not -3"),
        (["--bert-steps", "0"], "--bert-steps", "expected a whole number >= 1, not 0"),
        (["--threads", "0"], "--threads", "expected a whole number >= 1, not 0"),
        (["--units", "two"], "--units", "expected a whole number >= 1, not 'two'"),
        (["--tasks", "taiyi_nonexistent"], "--tasks", "unknown dataset 'taiyi_nonexistent'; known: bc5cdr_chem"),
        (["--tasks", "taiyi_hoc,taiyi_nope*"], "--tasks", "task pattern 'taiyi_nope*' matches no taiyi_* task"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_demo_refuses_bad_options_up_front(tmp_path, capsys, argv, option, fragment):
    out = tmp_path / "demo"
    code, _stdout, err = _cli(capsys, "demo", "--out", out, *argv)
    assert code != 0
    line = _one_error(err, "demo")
    assert f"argument {option}: {fragment}" in line, line
    assert not out.exists()  # refused before any step: nothing evaluated, nothing trained


@pytest.mark.parametrize(
    ("field", "value", "option"),
    [
        ("finetune_steps", -3, "--finetune-steps"),
        ("units", 0, "--units"),
        ("max_gen_toks", 0, "--max-gen-toks"),
        ("threads", 0, "--threads"),
        ("finetune_cap", -5, "finetune_cap"),
        ("tasks", ["taiyi_nonexistent"], "--tasks"),
    ],
)
def test_demo_settings_built_in_code_are_refused_before_any_step(tmp_path, field, value, option):
    """`DemoSettings` made in code (the tests', a notebook's) are checked by the same table: an
    untrained adapter can no longer be reported as fine-tuned."""
    from taiyi_bench.harness.apps.demo import Demo, DemoSettings

    settings = DemoSettings.reduced(tmp_path / "demo")
    setattr(settings, field, value)
    with pytest.raises(ConfigError) as caught:
        Demo(settings).run()
    assert str(caught.value).startswith(f"{option}") and "\n" not in str(caught.value)
    assert not (tmp_path / "demo").exists()


def test_demo_tasks_accept_keys_groups_and_patterns_as_task_names():
    from taiyi_bench.harness.apps.demo import task_selection

    assert task_selection("taiyi_hoc,cmeee") == ["taiyi_cmeee", "taiyi_hoc"]
    assert task_selection("taiyi_bc5cdr_*") == ["taiyi_bc5cdr_chem", "taiyi_bc5cdr_dise", "taiyi_bc5cdr_re"]


# ============================================================================== lm_eval --metadata


def test_lm_eval_refuses_a_negative_thinking_allowance_in_one_line(tmp_path):
    """It was a good message at the bottom of a traceback: now `lm_eval: error:`, one line
    (said by the run's preflight, `taiyi_bench.harness.lmeval.preflight`, or else by the task itself)."""
    extra = ["--metadata", '{"thinking_allowance": -5000}']
    fragment = "thinking_allowance must be a whole number >= 0, not -5000"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(
        ["lm_eval", "--model", "dummy", "--tasks", "taiyi_medqa_usmle", "--limit", "1",
         "--output_path", str(tmp_path / "out"), *extra],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("lm_eval: error:")]
    assert len(errors) == 1 and fragment in errors[0], done.stderr[-3000:]
    assert not list((tmp_path / "out").glob("**/results_*.json"))


def test_the_task_itself_refuses_a_bad_budget_as_a_one_line_error():
    """The backstop behind the preflight (a `simple_evaluate` call in code, `--gen_kwargs`): a
    ConfigError, which lm_eval's excepthook (taiyi_bench.harness.lmeval.errors) prints as one line."""
    import importlib.util

    from taiyi_bench.harness.lmeval.errors import USER_ERRORS

    path = Path(__file__).resolve().parents[1] / "tasks" / "utils.py"
    spec = importlib.util.spec_from_file_location("taiyi_task_utils_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(USER_ERRORS, match="--metadata thinking_allowance must be a whole number >= 0, not -5000"):
        module.whole_number(-5000, "--metadata thinking_allowance")
    assert module.whole_number(3072, "--metadata thinking_allowance") == 3072
