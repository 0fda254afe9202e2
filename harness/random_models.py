"""Tiny random models built in-process, for tests and benchmarks: a 2-layer Llama with a
byte-level BPE tokenizer and a 2-layer BERT with a WordPiece tokenizer, both trained here.

Their outputs are noise; they exist so that every code path (training, lm-eval's hf backend,
token classification) runs in seconds on a CPU. Every directory written here loads with
`from_pretrained(dir)` and with `lm_eval --model hf --model_args pretrained=<dir>`.
"""

from __future__ import annotations

from pathlib import Path

from taiyi_bench.harness.local_models import build_atomically
from taiyi_bench.harness.paths import SAMPLES_DIR
from taiyi_bench.harness.prompts import TEMPLATE_FAMILIES

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


def _corpus_lines(limit: int = 600, per_file: int = 15) -> list[str]:
    """A few hundred lines for tokenizer training: the bundled samples (sorted, so the result
    is deterministic for a given checkout), the prompt templates and a fixed built-in corpus."""
    lines = list(_BUILTIN_CORPUS)
    lines += [template for family in TEMPLATE_FAMILIES.values() for templates in family.values() for template in templates]
    sample_lines: list[str] = []
    for path in sorted(p for p in SAMPLES_DIR.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        # A few lines from every file, so that every set and both languages are represented.
        sample_lines.extend([line.strip()[:2000] for line in text.splitlines() if line.strip()][:per_file])
    return lines + sample_lines[:limit]


def build_tiny_causal_lm(out_dir: Path, seed: int = 0) -> Path:
    """A randomly initialised 2-layer Llama (hidden 32) with a byte-level BPE tokenizer trained
    here, a ChatML-style chat template and `<|endoftext|>` as eos/pad (Qwen's convention), in
    `out_dir`. Deterministic for a given seed and checkout; a complete build of the same seed is reused."""
    def build(tmp: Path) -> None:
        import torch
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
        from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

        bpe = Tokenizer(models.BPE())
        bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        bpe.decoder = decoders.ByteLevel()
        bpe.post_processor = processors.ByteLevel(trim_offsets=False)
        trainer = trainers.BpeTrainer(
            vocab_size=1024, min_frequency=2, special_tokens=list(TINY_LM_SPECIAL_TOKENS), show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodable: no UNK
        )
        bpe.train_from_iterator(_corpus_lines(), trainer=trainer)
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
            additional_special_tokens=["<|im_start|>", "<|im_end|>"], model_max_length=4096,
        )
        tokenizer.chat_template = TINY_CHAT_TEMPLATE
        eos_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        im_end_id = tokenizer.convert_tokens_to_ids("<|im_end|>")

        torch.manual_seed(seed)
        config = LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
            # Generous: with a 1k-token vocabulary a long abstract is several thousand tokens,
            # and lm-eval takes its context limit from this field. RoPE costs nothing extra.
            max_position_embeddings=4096,
            bos_token_id=None, eos_token_id=eos_id, pad_token_id=eos_id,
        )
        model = LlamaForCausalLM(config)
        # Stop generation at either end marker, as chat models do.
        model.generation_config = GenerationConfig(eos_token_id=[eos_id, im_end_id], pad_token_id=eos_id)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return build_atomically(Path(out_dir), build, {"model": "tiny-causal-lm", "seed": seed})


def build_tiny_bert(out_dir: Path, seed: int = 0) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) with an uncased WordPiece tokenizer trained
    here (Chinese characters split one per token, as in bert-base-chinese), in `out_dir`.
    Deterministic for a given seed and checkout; a complete build of the same seed is reused."""
    def build(tmp: Path) -> None:
        import torch
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
        from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

        wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True, handle_chinese_chars=True)
        wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        wordpiece.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(
            vocab_size=2000, min_frequency=1, special_tokens=list(TINY_BERT_SPECIAL_TOKENS), show_progress=False
        )
        wordpiece.train_from_iterator(_corpus_lines(), trainer=trainer)
        cls_id, sep_id = wordpiece.token_to_id("[CLS]"), wordpiece.token_to_id("[SEP]")
        wordpiece.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
        )
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=wordpiece, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
            mask_token="[MASK]", model_max_length=512,
        )
        torch.manual_seed(seed)
        config = BertConfig(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
        )
        BertModel(config).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return build_atomically(Path(out_dir), build, {"model": "tiny-bert", "seed": seed})
