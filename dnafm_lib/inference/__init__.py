"""Running a trained model over genomes: masked scoring, the tracks steps (``tracks``: plan →
score → gather → browser), in-silico mutagenesis and variant scoring, and sequence generation.

May import: ``core``, ``model``, ``data``.
"""
