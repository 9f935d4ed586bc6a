"""Glue for the Snakemake workflow: config layering and start-time checks of a cohort, the run
summary printed at the end, the release of a stale Snakemake lock, and the tracks' bp per scoring
job (``chunk_size``).

May import: ``core``, ``model``, ``data``, ``train``, ``inference``, ``finetune``.
"""
