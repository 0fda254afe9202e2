"""Two-stage LoRA/QLoRA supervised fine-tuning that produces a Taiyi-style model.

`taiyi_bench.finetune.train` is the recipe (named steps, top to bottom), `taiyi_bench.finetune.performance` makes it fast
(attention path, checkpointing, label-only loss) and measures it, `taiyi_bench.finetune.data` builds the instruction data,
`taiyi_bench.finetune.encoding` tokenises with assistant-only labels and packs, `taiyi_bench.finetune.config` resolves
the YAML recipes in `finetune/recipes/`, `taiyi_bench.finetune.cli` is `taiyi finetune`.
"""
