"""Glue for the Snakemake workflow: config layering and start-time checks of a cohort, the run
summary printed at the end, and the release of a stale Snakemake lock.

May import: ``core``, ``model``, ``data``, ``train``, ``inference``, ``finetune``.
"""
