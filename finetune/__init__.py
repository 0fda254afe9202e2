"""Two-stage LoRA/QLoRA supervised fine-tuning that produces a Taiyi-style model.

`finetune.train` is the recipe (named steps, top to bottom), `finetune.performance` makes it fast
(attention path, checkpointing, label-only loss) and measures it, `finetune.data` builds the instruction data,
`finetune.encoding` tokenises with assistant-only labels and packs, `finetune.config` resolves
the YAML recipes in `finetune/recipes/`, `finetune.cli` is `taiyi finetune`.
"""
