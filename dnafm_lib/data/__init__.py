"""Genomes and the files around them: FASTA (streaming and indexed), the genome sheet, prepared
genomes, GFF3, VCF, NCBI and HTTP downloads, the NT splits, tokenized shards and genome batches.

May import: ``core``, ``model`` (the tokenizer's vocabulary).
"""
