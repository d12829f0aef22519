"""Evaluation: multiple-choice benchmarks (``lmforge eval``) and generated predictions scored with
BLEU/ROUGE (``do_predict``). See docs/eval.md."""
