"""Building blocks of the multi-task trainer, one file per idea.

``sampling`` (which examples each step), ``weighting`` (how task losses or gradients combine),
``gradients`` (per-task gradients on the shared parameters), ``conflicts`` (gradient-conflict
monitoring), ``schedule`` (AdamW groups, warm-up and decay), ``nonfinite`` (NaN/inf guard),
``checkpoint`` (atomic checkpoints), ``rng`` (seeding and RNG snapshots), ``run_folder``
(config, environment, JSON-lines logs) and ``tracking`` (TensorBoard / MLflow).
"""
