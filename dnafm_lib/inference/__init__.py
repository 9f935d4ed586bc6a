"""Running a trained model over genomes: the masked-LM core all of them share (``masked``: the
forward pass under one autocast, A/C/G/T logits at chosen positions), the tracks steps (``tracks``: plan →
score → gather → browser), in-silico mutagenesis and variant scoring, and sequence generation.

May import: ``core``, ``model``, ``data``.
"""
