"""The DNA FM encoder: its definition, attention backends, the tokenizer, Hugging Face model
directories (AIDO.DNA layout) and the context length a checkpoint was trained at.

May import: ``core``.
"""
