"""stage pt: continued pre-training on raw text, every token trained.

Rows: text + EOS chunked to ``cutoff_len`` and packed by default (data/processors.py,
data/packing.py); same collator and trainer as sft. With ``template: auto`` no template is built
and the tokenizer is saved as it came (a base model has no chat template to give).
"""

from __future__ import annotations

from lmforge.data.encoders import PRETRAIN
from lmforge.train.stages import Stage
from lmforge.train.stages.sft import causal_lm_trainer, padding_collator

STAGE = Stage(name="pt", encoding=PRETRAIN, collator=padding_collator, build_trainer=causal_lm_trainer)
