"""Where a cohort's results go: every directory and file name of the workflow, stated once.

``workflow/rules/common.smk`` builds all its paths from a ``Layout``; the start checks
(``cohort``) name the same paths in their messages. File names inside a folder belong to the
library code that writes them (``data.genomes``, ``data.shards``, ``data.splits``, ``data.ncbi``)
and are only gathered here. Plain Python, no torch: read at every workflow start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dnafm_lib.data import genomes, ncbi, shards, splits

#: the value of tracks.models / finetune.model that means this workflow's own pretrained model
EXPORT = "export"

#: a prepared genome's folder (results/genomes/{genome}/), by the keyword the rules use
GENOME_FILES = {
    "fasta": genomes.FASTA_NAME,
    "fai": f"{genomes.FASTA_NAME}.fai",
    "gzi": f"{genomes.FASTA_NAME}.gzi",
    "sizes": genomes.SIZES_NAME,
    "provenance": genomes.PROVENANCE_NAME,
}
#: copied beside the FASTA only for rows that name a GFF3
GENOME_ANNOTATION = genomes.ANNOTATION_NAME
#: a genome's shard folder (results/shards/{genome}/)
SHARD_FILES = {
    "tokens": shards.TOKENS_FILE,
    "softmask": shards.SOFTMASK_FILE,
    "index": shards.INDEX_FILE,
    "metadata": shards.METADATA_FILE,
}
#: the splits stage's folder (results/splits/)
SPLITS_FILES = {"genomes": splits.GENOMES_TSV, "removed": splits.REMOVED_TSV, "summary": splits.SUMMARY_JSON}
#: a downloaded genome's folder (results/downloads/{genome}/)
DOWNLOAD_FILES = {"fasta": ncbi.DOWNLOAD_FASTA_NAME, "record": ncbi.DOWNLOAD_RECORD_NAME}


@dataclass(frozen=True)
class Layout:
    """The folders under a cohort's ``results_dir``."""

    results: Path

    def __init__(self, results: str | os.PathLike):
        object.__setattr__(self, "results", Path(results))

    @property
    def splits(self) -> Path:
        return self.results / "splits"

    @property
    def downloads(self) -> Path:
        return self.results / "downloads"

    @property
    def genomes(self) -> Path:
        return self.results / "genomes"

    @property
    def shards(self) -> Path:
        return self.results / "shards"

    @property
    def genome_batches(self) -> Path:
        return self.results / "genome_batches"

    @property
    def pretrain(self) -> Path:
        return self.results / "pretrain"

    @property
    def models(self) -> Path:
        return self.results / "models"

    @property
    def tracks(self) -> Path:
        return self.results / "tracks"

    @property
    def browser(self) -> Path:
        return self.results / "browser"

    @property
    def finetune(self) -> Path:
        return self.results / "finetune"

    def split_manifest(self, split: str) -> Path:
        return self.shards / f"{split}.manifest.json"

    def model_dir(self, source: str, run: str) -> Path:
        """The model directory a tracks.models / finetune.model value names: the export of the
        pretrain stage's ``run`` for ``EXPORT``, else the checkpoint directory itself."""
        return self.models / run if source == EXPORT else Path(source)
