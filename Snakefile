# dnafm: genome mining with the DNA FM encoder. The stages, in order:
#   genomes  → download/convert each genome of the sheet (bgzip FASTA + .fai/.gzi, chrom.sizes)
#   splits   → the NT multi-species train/validation/test splits
#   shards   → tokenized, memmap-able training windows
#   pretrain → MLM pretraining (torchrun / srun torchrun) and export to the AIDO.DNA layout
#   tracks   → MLM-loss and embedding tracks (bigWig/BED) with an IGV session, igv.html and a hub
#   finetune → the fine-tuning example: CDS vs non-CDS windows, pretrained vs from scratch
#   report   → snakemake --report captions
# The default target (`rule all`) makes the outputs of the cohort's `stages:` (config/config.yaml):
# any of splits, pretrain, tracks, finetune, and whatever those need.
from snakemake.utils import min_version

min_version("8.20")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/splits.smk"
include: "workflow/rules/genomes.smk"
include: "workflow/rules/shards.smk"
include: "workflow/rules/genome_batches.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/tracks.smk"
include: "workflow/rules/finetune.smk"


rule all:
    default_target: True
    input:
        selected_targets(),


onsuccess:
    log_tracks_summary()
