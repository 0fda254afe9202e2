"""General-LLM baselines: the config registry and its schema, the exact lm-eval invocation,
the preflight checks, scaffolding, and one real end-to-end run with SmolLM2 (slow)."""

from __future__ import annotations

import json
import shlex
import shutil
import socket
import time
from pathlib import Path

import pytest
import yaml
from provenance_keys import missing_keys

from taiyi_bench.baselines import llm_run, preflight
from taiyi_bench.baselines.llm_registry import (
    REGISTRY_DIR,
    config_paths,
    find_config,
    list_configs,
    load_config,
    load_schema,
    scaffold,
    validation_errors,
)
from taiyi_bench.harness.apps.cli import main
from taiyi_bench.harness.errors import ConfigError

SHIPPED = sorted(p.stem for p in REGISTRY_DIR.glob("*.yaml"))


def _closed_port() -> int:
    # Bind then close: nothing listens on this port for the next moment.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------ registry


def test_schema_is_a_valid_json_schema():
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(load_schema())


@pytest.mark.parametrize("name", SHIPPED)
def test_every_config_validates(name):
    path = REGISTRY_DIR / f"{name}.yaml"
    assert validation_errors(yaml.safe_load(path.read_text(encoding="utf-8"))) == []
    config = load_config(path)
    assert config.name == name


def test_registry_covers_the_comparison():
    configs = {c.name: c for c in list_configs()}
    models = {c.model for c in configs.values()}
    assert {"Qwen/Qwen-7B-Chat", "DUTIR-BioNLP/Taiyi-LLM", "DUTIR-BioNLP/Taiyi2-chat",
            "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", "local:smollm2"} <= models
    assert any(m.startswith("THUDM/glm-4-9b-chat") for m in models)
    assert any("Llama-3" in m for m in models)
    assert {c.backend for c in configs.values()} >= {"hf", "vllm", "openai-chat-completions", "local-chat-completions"}
    assert any(c.is_api and c.model.startswith("gpt-3.5") for c in configs.values())
    assert any(c.is_api and c.model.startswith("gpt-4") for c in configs.values())
    # Remote code only where the model has no transformers-native class, each explicitly.
    remote = {c.name for c in configs.values() if c.trust_remote_code}
    assert remote == {"taiyi-llm", "taiyi2-chat", "qwen-7b-chat"}
    for name in remote:
        assert "trust_remote_code: true" in configs[name].path.read_text()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"backend": "openai-chat-completions"}, "endpoint"),
        ({"endpoint": {"base_url": "http://x", "api_key_env": "K"}}, "endpoint"),  # hf + endpoint
        ({"backend": "openai-chat-completions", "endpoint": {"base_url": "http://x", "api_key_env": "sk-live-123"}}, "api_key_env"),
        ({"batch_size": "many"}, "batch_size"),
        ({"surprise": 1}, "surprise"),
        ({"model_args": {"nested": {"a": 1}}}, "model_args"),
    ],
)
def test_invalid_configs_are_rejected_with_the_field(change, message, tmp_path):
    data = yaml.safe_load((REGISTRY_DIR / "glm4-9b-chat.yaml").read_text())
    data.update(change)
    data["name"] = "broken"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_name_must_match_file_and_values_must_survive_key_value_syntax(tmp_path):
    data = yaml.safe_load((REGISTRY_DIR / "glm4-9b-chat.yaml").read_text())
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="file name"):
        load_config(tmp_path / "other.yaml")
    data.update(name="commas", model_args={"dtype": "a,b"})
    (tmp_path / "commas.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="contains ','"):
        load_config(tmp_path / "commas.yaml")


def test_extra_registry_folder_and_scaffold(tmp_path, monkeypatch):
    monkeypatch.setenv("TAIYI_BASELINES_DIR", str(tmp_path))
    path = scaffold("my-model", tmp_path, model="org/my-model")
    assert load_config(path).model == "org/my-model"
    assert "my-model" in config_paths()
    api = scaffold("my-api", tmp_path, backend="openai-chat-completions", model="gpt-4o-mini")
    assert load_config(api).endpoint["api_key_env"] == "OPENAI_API_KEY"
    with pytest.raises(ConfigError, match="exists"):
        scaffold("my-model", tmp_path)
    assert main(["baseline", "new", "via-cli", "--dir", str(tmp_path), "--backend", "vllm"]) == 0
    assert main(["baseline", "validate", str(tmp_path / "via-cli.yaml")]) == 0


def test_new_prints_a_next_step_that_works_and_never_writes_into_the_package(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TAIYI_BASELINES_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    shipped = sorted(REGISTRY_DIR.iterdir())
    monkeypatch.chdir(tmp_path)
    assert main(["baseline", "new", "mine", "--model", "org/mine"]) == 0
    assert main(["baseline", "new", "elsewhere", "--dir", str(tmp_path / "cfg"), "--model", "org/other"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert sorted(REGISTRY_DIR.iterdir()) == shipped and (tmp_path / "baselines" / "llm" / "mine.yaml").is_file()
    assert out[0] == (
        "wrote baselines/llm/mine.yaml (baselines/llm/ of the current directory; --dir writes elsewhere); edit it, then: "
        "taiyi baseline validate baselines/llm/mine.yaml && taiyi baseline run baselines/llm/mine.yaml --dry-run"
    )
    assert out[1] == f"to run it by name: export TAIYI_BASELINES_DIR={tmp_path / 'baselines' / 'llm'}"
    assert out[3] == f"to run it by name: export TAIYI_BASELINES_DIR={tmp_path / 'cfg'}"
    # The printed next steps work as printed, from this directory and without the variable.
    for line in (out[0], out[2]):
        validate, run = line.split("then: ")[1].split(" && ")
        assert main(shlex.split(validate)[1:]) == 0
        assert main(shlex.split(run)[1:]) == 0
        assert "--model_args pretrained=org/" in capsys.readouterr().out


def test_validate_fails_for_a_local_model_folder_that_does_not_exist(tmp_path, capsys):
    scaffold("gone", tmp_path, model=str(tmp_path / "no-such-model"))
    assert main(["baseline", "validate", str(tmp_path / "gone.yaml")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{tmp_path / 'gone.yaml'}: model ") and f"{tmp_path / 'no-such-model'} does not exist" in err
    (tmp_path / "empty-model").mkdir()
    scaffold("empty", tmp_path, model=str(tmp_path / "empty-model"))
    assert main(["baseline", "validate", str(tmp_path / "empty.yaml")]) == 1
    assert "not a model directory" in capsys.readouterr().err


def test_list_shows_every_config(capsys):
    assert main(["baseline", "list"]) == 0
    out = capsys.readouterr().out
    for name in SHIPPED:
        assert name in out
    assert main(["baseline", "list", "--json"]) == 0
    assert {row["name"] for row in json.loads(capsys.readouterr().out)} == set(SHIPPED)


# ------------------------------------------------------------------------------ invocation


def _lm_eval_config(argv: list[str]):
    """Parse an invocation with lm-eval's own command line and configuration (nothing runs)."""
    from lm_eval._cli import HarnessCLI
    from lm_eval.config.evaluate_config import EvaluatorConfig

    assert argv[:2] == ["lm_eval", "run"]
    namespace = HarnessCLI()._parser.parse_args(argv[1:])
    return EvaluatorConfig.from_cli(namespace)


def test_hf_invocation_is_exact_and_lm_eval_accepts_it():
    config = find_config("taiyi-llm")
    invocation = llm_run.build_invocation(config, tasks=["bc5cdr_chem", "taiyibench_zh"], limit=5, data_dir="/data")
    assert invocation.argv == [
        "lm_eval", "run",
        "--model", "taiyi-hf",  # lm-eval's hf backend plus prompt_format (taiyi_bench.harness.lmeval.models)
        "--model_args", "pretrained=DUTIR-BioNLP/Taiyi-LLM,trust_remote_code=True,dtype=bfloat16,"
                        "eod_token=<|endoftext|>,prompt_format=taiyi1",
        "--tasks", "taiyi_bc5cdr_chem,taiyibench_zh",
        "--batch_size", "auto",
        "--output_path", str(Path("results/runs/taiyi-llm")),
        "--log_samples",
        "--gen_kwargs", "do_sample=False,temperature=0.0",  # no max_gen_toks: each task keeps its budget
        "--limit", "5",
        "--metadata", json.dumps({"data_dir": str(Path("/data").resolve())}),
    ]
    parsed = _lm_eval_config(invocation.argv)
    assert parsed.model == "taiyi-hf"
    assert parsed.model_args == {"pretrained": "DUTIR-BioNLP/Taiyi-LLM", "trust_remote_code": True, "dtype": "bfloat16",
                                 "eod_token": "<|endoftext|>", "prompt_format": "taiyi1"}
    assert parsed.metadata["data_dir"] == str(Path("/data").resolve())
    assert parsed.log_samples and not parsed.apply_chat_template


def test_default_tasks_are_the_13_and_chat_template_follows_the_config():
    invocation = llm_run.build_invocation(find_config("glm4-9b-chat"))
    assert invocation.argv[invocation.argv.index("--tasks") + 1] == "taiyi_*"
    assert "--apply_chat_template" in invocation.argv
    assert "--limit" not in invocation.argv and "--metadata" not in invocation.argv
    assert _lm_eval_config(invocation.argv).apply_chat_template


def test_vllm_reasoning_model_keeps_its_think_marker():
    invocation = llm_run.build_invocation(find_config("deepseek-r1-distill-qwen-14b"))
    parsed = _lm_eval_config(invocation.argv)
    assert parsed.model == "taiyi-vllm" and parsed.model_args["think_end_token"] == "</think>"
    assert parsed.model_args["prompt_format"] == "chat_template" and parsed.apply_chat_template
    # No global budget: each task's own plus the thinking allowance, carried in --metadata.
    assert "max_gen_toks" not in parsed.gen_kwargs and parsed.metadata["thinking_allowance"] == 3072


def test_api_key_never_appears_in_the_command(monkeypatch):
    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("TAIYI_LOCAL_API_KEY", secret)
    config = find_config("openai-compatible-server")
    invocation = llm_run.build_invocation(config)
    assert secret not in invocation.shell() and all(secret not in arg for arg in invocation.argv)
    # lm-eval reads OPENAI_API_KEY: the child gets it copied from the variable the config names.
    assert invocation.env_from == {"OPENAI_API_KEY": "TAIYI_LOCAL_API_KEY"}
    assert invocation.shell().startswith('OPENAI_API_KEY="$TAIYI_LOCAL_API_KEY" lm_eval run')
    assert invocation.environment()["OPENAI_API_KEY"] == secret
    parsed = _lm_eval_config(invocation.argv)
    assert parsed.model == "local-chat-completions" and parsed.apply_chat_template
    assert parsed.model_args["base_url"] == "http://localhost:8000/v1/chat/completions"
    assert "api_key" not in json.dumps(parsed.model_args)


def test_cli_dry_run_prints_the_resolved_local_model(capsys):
    from taiyi_bench.harness.local_models import smollm2_dir

    status = main(["baseline", "run", "smollm2-135m-instruct", "--dry-run", "--limit", "1", "--tasks", "bc5cdr_chem", "kuake_qic"])
    assert status == 0
    argv = shlex.split(capsys.readouterr().out.strip())
    assert argv[argv.index("--model_args") + 1].startswith(f"pretrained={smollm2_dir()},")
    assert argv[argv.index("--tasks") + 1] == "taiyi_bc5cdr_chem,taiyi_kuake_qic"
    assert argv[argv.index("--limit") + 1] == "1"
    assert "--apply_chat_template" in argv and "--log_samples" in argv
    _lm_eval_config(argv)


# ------------------------------------------------------------------------------ preflight


def test_unreachable_endpoint_stops_quickly():
    url = f"http://127.0.0.1:{_closed_port()}/v1/chat/completions"
    started = time.monotonic()
    with pytest.raises(preflight.PreflightError, match="unreachable"):
        preflight.check_endpoint(url, timeout=1.0)
    assert time.monotonic() - started < 5


def test_reachable_endpoint_passes_whatever_it_answers():
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self.send_response(405)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        preflight.check_endpoint(f"http://127.0.0.1:{server.server_port}/v1/chat/completions", timeout=2.0)
    finally:
        server.shutdown()


def test_missing_api_key_is_named_not_shown(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(preflight.PreflightError, match=r"\$OPENAI_API_KEY"):
        preflight.check_api_key("OPENAI_API_KEY", "gpt-4o")


def test_unknown_models_stop_with_a_clear_message(tmp_path, monkeypatch):
    with pytest.raises(preflight.PreflightError, match="does not exist"):
        preflight.resolve_model(str(tmp_path / "missing-model"))
    with pytest.raises(preflight.PreflightError, match="not a model directory"):
        preflight.check_model_available(preflight.resolve_model(str(tmp_path)))
    with pytest.raises(preflight.PreflightError, match="neither"):
        preflight.resolve_model("not a model name")
    with pytest.raises(preflight.PreflightError, match="unknown local model"):
        preflight.resolve_model("local:nothing")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = preflight.resolve_model("nobody/no-such-model-xyz")
    assert source.kind == "hub"
    with pytest.raises(preflight.PreflightError, match="offline mode"):
        preflight.check_model_available(source)


def test_builtin_model_passes_preflight():
    source = preflight.resolve_model("local:minilm")
    preflight.check_model_available(source)
    assert (Path(source.location) / "config.json").is_file()


def _refuse_to_run(_invocation):
    raise AssertionError("lm-eval must not start when a preflight check fails")


def _api_config(tmp_path: Path, base_url: str, key_env: str) -> Path:
    data = yaml.safe_load((REGISTRY_DIR / "openai-compatible-server.yaml").read_text())
    data["name"] = "probe"
    data["endpoint"].update(base_url=base_url, api_key_env=key_env)
    path = tmp_path / "probe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_cli_run_stops_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(llm_run, "execute", _refuse_to_run)
    closed = f"http://127.0.0.1:{_closed_port()}/v1/chat/completions"
    # missing key (checked first: no network touched)
    monkeypatch.delenv("TAIYI_PROBE_KEY", raising=False)
    assert main(["baseline", "run", str(_api_config(tmp_path, closed, "TAIYI_PROBE_KEY"))]) == 2
    assert "$TAIYI_PROBE_KEY" in capsys.readouterr().err
    # unreachable endpoint
    monkeypatch.setenv("TAIYI_PROBE_KEY", "sk-dummy")
    assert main(["baseline", "run", str(_api_config(tmp_path, closed, "TAIYI_PROBE_KEY")), "--timeout", "1"]) == 2
    err = capsys.readouterr().err
    assert "unreachable" in err and "sk-dummy" not in err
    # unknown model (a hub name, offline)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = yaml.safe_load((REGISTRY_DIR / "glm4-9b-chat.yaml").read_text())
    data.update(name="ghost", model="nobody/ghost-model-7b")
    (tmp_path / "ghost.yaml").write_text(yaml.safe_dump(data))
    assert main(["baseline", "run", str(tmp_path / "ghost.yaml")]) == 2
    assert "nobody/ghost-model-7b" in capsys.readouterr().err
    # vllm needs vllm and a GPU, neither of which is here
    assert main(["baseline", "run", "qwen2.5-7b-instruct"]) == 2
    assert "vllm" in capsys.readouterr().err
    # unknown config name
    assert main(["baseline", "run", "no-such-config"]) == 2
    assert "no baseline config named" in capsys.readouterr().err


# ------------------------------------------------------------------------------ sweep, resume, lm-eval options


def test_dry_run_sweep_prints_one_exact_command_per_model_with_the_lm_eval_options(capsys):
    status = main([
        "baseline", "run", "taiyi-llm", "glm4-9b-chat", "--tasks", "bc5cdr_chem", "medqa_mcmle", "--limit", "5",
        "--num_fewshot", "2", "--seed", "7", "--use-cache", "/tmp/answers", "--system-instruction", "Be brief.",
        "--mcmle-options", "5", "--dry-run", "--", "--wandb_args", "project=taiyi", "--hf_hub_log_args", "hub_results_org=me",
    ])
    assert status == 0
    common = [
        "--tasks", "taiyi_bc5cdr_chem,taiyi_medqa_mcmle", "--batch_size", "auto",
    ]
    options = [
        "--system_instruction", "Be brief.", "--gen_kwargs", "do_sample=False,temperature=0.0", "--limit", "5",
        "--metadata", '{"mcmle_options": 5}', "--num_fewshot", "2", "--seed", "7", "--use_cache", "/tmp/answers",
        "--wandb_args", "project=taiyi", "--hf_hub_log_args", "hub_results_org=me",
    ]
    assert capsys.readouterr().out.splitlines() == [shlex.join(argv) for argv in (
        ["lm_eval", "run", "--model", "taiyi-hf", "--model_args",
         "pretrained=DUTIR-BioNLP/Taiyi-LLM,trust_remote_code=True,dtype=bfloat16,eod_token=<|endoftext|>,prompt_format=taiyi1",
         *common, "--output_path", str(Path("results/runs/taiyi-llm")), "--log_samples", *options],
        ["lm_eval", "run", "--model", "taiyi-hf", "--model_args", "pretrained=THUDM/glm-4-9b-chat-hf,dtype=bfloat16,prompt_format=chat_template",
         *common, "--output_path", str(Path("results/runs/glm4-9b-chat")), "--log_samples", "--apply_chat_template", *options],
    )]
    for line in capsys.readouterr().out.splitlines():
        parsed = _lm_eval_config(shlex.split(line))
        assert parsed.num_fewshot == 2 and parsed.metadata["mcmle_options"] == 5 and parsed.wandb_args == "project=taiyi"


@pytest.mark.parametrize("extra, clash", [(["--limit", "3"], "--limit"), (["-L", "3"], "--limit"), (["--tas", "x"], "--tasks"),
                                          (["--num_fewshot=3"], "--num_fewshot")])
def test_lm_eval_arguments_after_dashes_cannot_override_the_command(extra, clash, capsys):
    status = main(["baseline", "run", "taiyi-llm", "--limit", "5", "--num-fewshot", "1", "--dry-run", "--", *extra])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    assert f"the lm-eval argument {extra[0]} would override {clash}, which `taiyi baseline run` already sets" in captured.err


@pytest.fixture
def scripted_lm_eval(monkeypatch):
    """`taiyi baseline run` with lm-eval's own evaluator and the oracle model in place of the
    `lm_eval` process (on the command's tasks, --limit and --metadata, saving what
    `--output_path --log_samples` saves); returns the task lists it ran."""
    import lm_eval
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    from taiyi_bench.harness.lmeval.plugin import tasks_dir

    from scripted_lm import oracle_lm

    calls: list[list[str]] = []

    def execute(invocation):
        argv = invocation.argv
        tasks = argv[argv.index("--tasks") + 1].split(",")
        calls.append(tasks)
        manager = TaskManager(include_path=str(tasks_dir()), include_defaults=False,
                              metadata=json.loads(argv[argv.index("--metadata") + 1]))
        tracker = EvaluationTracker(output_path=str(invocation.output_path))
        out = lm_eval.simple_evaluate(model=oracle_lm(), tasks=tasks, task_manager=manager, log_samples=True,
                                      limit=int(argv[argv.index("--limit") + 1]), evaluation_tracker=tracker)
        samples = out.pop("samples")
        tracker.save_results_aggregated(results=out, samples=samples)
        for task, records in samples.items():
            tracker.save_results_samples(task_name=task, samples=records)
        return 0

    monkeypatch.setattr(llm_run, "execute", execute)
    monkeypatch.setattr(llm_run, "run_preflight", lambda config, **_: config.model)
    return calls


def test_run_resumes_per_set_and_reruns_what_changed(scripted_lm_eval, tmp_path, capsys):
    from taiyi_bench.baselines.llm_resume import RESUME_KEY
    from taiyi_bench.harness.paths import SAMPLES_DIR
    from taiyi_bench.harness.registry import get_spec

    data = tmp_path / "data"
    for key in ("bc5cdr_chem", "kuake_qic"):
        spec = get_spec(key)
        (data / spec.data_subdir).mkdir(parents=True)
        shutil.copy(SAMPLES_DIR / spec.data_subdir / spec.files[spec.eval_split], data / spec.data_subdir)
    config = tmp_path / "scripted.yaml"
    settings = {"name": "scripted", "display_name": "Scripted", "backend": "hf", "model": "org/scripted",
                "prompt_format": "plain", "batch_size": 1, "gen_kwargs": {"do_sample": False}}
    config.write_text(yaml.safe_dump(settings))
    out = tmp_path / "runs"
    run = ["baseline", "run", str(config), "--tasks", "bc5cdr_chem", "kuake_qic", "--limit", "1",
           "--data-dir", str(data), "--output-root", str(out)]

    def dry_run(*more: str) -> tuple[list[str], str]:
        assert main([*run, "--dry-run", *more]) == 0
        captured = capsys.readouterr()
        return [argv[argv.index("--tasks") + 1] for argv in map(shlex.split, captured.out.splitlines())], captured.err

    assert main(run) == 0 and scripted_lm_eval == [["taiyi_bc5cdr_chem", "taiyi_kuake_qic"]]
    (first,) = out.glob("scripted/**/results_*.json")
    assert json.loads(first.read_text())[RESUME_KEY]
    capsys.readouterr()
    # The same run again: both sets are done, nothing runs, one line says so.
    assert main(run) == 0 and len(scripted_lm_eval) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"# scripted: skipping taiyi_bc5cdr_chem, taiyi_kuake_qic: done with this config, command and data in "
        f"{out / 'scripted'} (--no-resume runs them again)"
    )
    # Whatever changes a result runs the sets again: the limit, an lm-eval option, --no-resume.
    both = ["taiyi_bc5cdr_chem,taiyi_kuake_qic"]
    assert dry_run("--limit", "2")[0] == both
    assert dry_run("--num-fewshot", "1")[0] == both
    assert dry_run("--", "--predict_only")[0] == both
    assert dry_run("--no-resume")[0] == both
    assert dry_run() == ([], dry_run()[1])
    # Changed data: only that set runs again, in a run of its own.
    spec = get_spec("kuake_qic")
    with open(data / spec.data_subdir / spec.files[spec.eval_split], "a", encoding="utf-8") as handle:
        handle.write("\n")
    tasks, err = dry_run()
    assert tasks == ["taiyi_kuake_qic"] and "skipping taiyi_bc5cdr_chem:" in err
    assert main(run) == 0 and scripted_lm_eval[-1] == ["taiyi_kuake_qic"]
    capsys.readouterr()
    assert dry_run()[0] == []
    # The config: its prompt format, or any other edit of the file, runs both sets again.
    config.write_text(yaml.safe_dump({**settings, "prompt_format": "chat_template"}))
    assert dry_run()[0] == both
    config.write_text(yaml.safe_dump({**settings, "description": "edited"}))
    assert dry_run()[0] == both


# ------------------------------------------------------------------------------ end to end


@pytest.mark.slow
def test_smollm2_end_to_end_with_lm_eval(tmp_path, capsys):
    """The real thing: `taiyi baseline run` starts lm-eval, which loads SmolLM2 (CPU) and writes
    results and samples the leaderboard reads."""
    status = main([
        "baseline", "run", "smollm2-135m-instruct", "--limit", "1", "--tasks", "bc5cdr_chem", "kuake_qic",
        "--output-root", str(tmp_path), "--max-gen-toks", "24",
    ])
    captured = capsys.readouterr()
    out = captured.out
    assert status == 0, out
    results = sorted((tmp_path / "smollm2-135m-instruct").glob("**/results_*.json"))
    assert len(results) == 1
    # the console: the command, one line per step, the headline table, results and report paths;
    # lm-eval's own output is in the run folder's log
    console = (out + captured.err).splitlines()
    assert len(console) <= 25, out
    assert [line.split()[1] for line in console if line.startswith("✓ ")] == ["evaluate", "report"]
    assert f"results: {results[0]}" in out and (results[0].parent / "report" / "report.html").is_file()
    (log,) = (tmp_path / "smollm2-135m-instruct").glob("run_*.log")
    assert "Running generate_until requests" in log.read_text(encoding="utf-8")
    assert "Running generate_until" not in out + captured.err
    data = json.loads(results[0].read_text())
    for task in ("taiyi_bc5cdr_chem", "taiyi_kuake_qic"):
        assert "micro_f1,none" in data["results"][task]
        assert data["n-samples"][task]["effective"] == 1
        assert data["configs"][task]["metadata"]["data_source"] == "samples"
        assert missing_keys(data["configs"][task]["metadata"]) == []
        assert data["configs"][task]["metadata"]["budget"]["effective"] == 24
        assert list(results[0].parent.glob(f"samples_{task}_*.jsonl"))
    assert data["config"]["gen_kwargs"]["max_gen_toks"] == 24
    from taiyi_bench.harness.apps.leaderboard.parse import collect_runs

    collection = collect_runs([tmp_path])
    assert len(collection.runs) == 1 and set(collection.runs[0].tasks) == {"bc5cdr_chem", "kuake_qic"}
