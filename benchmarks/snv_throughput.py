"""All-SNV table and variant scoring: bytes per bp of every output, and variants per hour.

On a finished tracks folder (e.g. the demo's results/tracks/{genome}/demo) with its genome and
model, in one process:
  * bytes per bp of each output file there, and of the SNV table, its index and the min-LLR
    track written from the probability bigWigs; each projected to hg38 (3.1e9 bp);
  * the tracks pass (WindowScorer over the whole genome at the folder's own settings) and the
    table written from it: variants per hour, three SNVs per scored base, amortised over the pass;
  * `score-variants` (mutagenesis.score_vcf) on random SNVs of the same genome: variants per hour;
  * both projected for the 7B model on one H100 from the forward throughput in RESULTS.md, with
    the cost per million variants at a stated GPU-hour price, beside the published peers.
Variants are counted as marin-dna does (REF and ALT scored, both strands): the table's numbers
use the folder's own reverse_complement setting, and the projection assumes both strands.

    PYTHONPATH=. python3 benchmarks/snv_throughput.py --tracks results/tracks/arabidopsis_chloroplast/demo \\
        --fasta results/genomes/arabidopsis_chloroplast/genome.fa.gz --model results/models/demo
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HG38_BP = 3.1e9
# benchmarks/RESULTS.md, "Tracks forward on GPU": the 7B geometry × 4 layers, bf16, eager, on one
# H100: 211,575 tokens/s; the full 32 layers ≈ 1/8 of that (the embedding and head are negligible).
H100_7B_TOKENS_PER_S = 211_575 / 8
# "The 7B path on one H200": the whole scorer runs 1.20× its bare forward.
SCORER_OVERHEAD = 1.20
GPU_HOUR_USD = 2.50  # an on-demand H100 hour, roughly, in late 2026: change it to your price
# files whose size does not grow with the genome (the .tbi grows by ~1 kB per Mb: a few MB for hg38)
FIXED_SIZE = {
    "igv.min.js",
    "igv.html",
    "igv_session.xml",
    "tracks.json",
    ".dnafm-output.json",
    "enrichment.png",
    "enrichment.tsv",
    "snv_scores.tsv.bgz.tbi",
}
PEERS = [("Evo 2 7B, GH200 (marin-dna #131)", 3_100)]


def file_sizes(folder: Path, genome_bp: int) -> list[tuple[str, int, float]]:
    return [
        (path.name, path.stat().st_size, path.stat().st_size / genome_bp)
        for path in sorted(folder.iterdir())
        if path.is_file()
    ]


def tracks_pass_seconds(model_dir: str, fasta_path: str, settings: dict) -> tuple[float, int]:
    """The tracks scoring of the whole genome at ``settings``: seconds and scored bases."""
    import torch

    from dnafm_lib.data.indexed_fasta import fasta_lengths, open_fasta
    from dnafm_lib.inference.tracks.scoring import ScoringSettings, WindowScorer
    from dnafm_lib.inference.tracks.tiling import Region
    from dnafm_lib.model.model_dir import load_model

    fasta = open_fasta(fasta_path)
    lengths = fasta_lengths(fasta)
    known = {f for f in ScoringSettings.__dataclass_fields__}
    scorer = WindowScorer(
        load_model(model_dir).eval(), ScoringSettings(**{k: v for k, v in settings.items() if k in known})
    )
    regions = [Region(name, 0, length) for name, length in lengths.items()]
    start = time.perf_counter()
    with torch.inference_mode():
        scores = scorer.score_regions(regions, lambda c, s, e: fasta[c][s:e], lengths)
    seconds = time.perf_counter() - start
    return seconds, int(sum(np.count_nonzero(~np.isnan(s.loss_nats)) for s in scores))


def score_variants_seconds(model_dir: str, fasta_path: str, n_variants: int, work: Path) -> float:
    import torch

    from dnafm_lib.data.indexed_fasta import fasta_lengths, open_fasta
    from dnafm_lib.inference.mutagenesis import score_vcf
    from dnafm_lib.model.model_dir import load_model

    fasta = open_fasta(fasta_path)
    lengths = fasta_lengths(fasta)
    rng = np.random.default_rng(0)
    rows = []
    contig = max(lengths, key=lengths.get)
    for pos in sorted(rng.choice(lengths[contig], n_variants * 2, replace=False) + 1):
        ref = str(fasta[contig][pos - 1 : pos]).upper()
        if ref in "ACGT" and len(rows) < n_variants:
            rows.append(f"{contig}\t{pos}\t.\t{ref}\t{'ACGT'[('ACGT'.index(ref) + 1) % 4]}\t.\t.\t.")
    vcf = work / "random.vcf"
    vcf.write_text(f"##fileformat=VCFv4.2\n##contig=<ID={contig}>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    with open(vcf, "a") as handle:
        handle.write("\n".join(rows) + "\n")
    model = load_model(model_dir).eval()
    start = time.perf_counter()
    with torch.inference_mode():
        score_vcf(model, fasta_path, vcf, work / "scored.vcf")
    return (time.perf_counter() - start) / len(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", required=True, help="a finished tracks folder (prob_*.bw, tracks.json)")
    parser.add_argument("--fasta", required=True, help="its genome (results/genomes/{genome}/genome.fa.gz)")
    parser.add_argument("--model", required=True, help="the checkpoint directory that made the tracks")
    parser.add_argument("--variants", type=int, default=200, help="random SNVs for score-variants (default 200)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument(
        "--project",
        default="3998,1999,7",
        help="window_bp,stride_bp,passes of the 7B projection (default 3998,1999,7: the NT cohort's)",
    )
    args = parser.parse_args(argv)

    import torch

    from dnafm_lib.inference.snv_table import BASES, write_snv_outputs_from_bigwigs
    from dnafm_lib.inference.tracks.writers import read_chrom_sizes

    if args.threads:
        torch.set_num_threads(args.threads)
    tracks = Path(args.tracks)
    summary = json.loads((tracks / "tracks.json").read_text())
    settings = summary["settings"]
    sizes = read_chrom_sizes(f"{args.fasta}.fai")
    genome_bp = sum(length for _, length in sizes)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        table = work / "snv_scores.tsv.bgz"
        start = time.perf_counter()
        info = write_snv_outputs_from_bigwigs(
            {b: tracks / f"prob_{b}.bw" for b in BASES},
            args.fasta,
            sizes,
            table,
            work / "snv_min_llr.bw",
            {"model": "benchmark", "settings": settings},
        )
        table_s = time.perf_counter() - start
        sizes_here = file_sizes(tracks, genome_bp) + file_sizes(work, genome_bp)
        pass_s, scored_bp = tracks_pass_seconds(args.model, args.fasta, settings)
        per_variant_s = score_variants_seconds(args.model, args.fasta, args.variants, work)

    print(f"## {tracks} ({genome_bp:,} bp; settings {json.dumps(settings, sort_keys=True)})\n")
    print("| output | bytes | bytes per bp | hg38 projection |")
    print("|---|---:|---:|---:|")
    for name, size, per_bp in sizes_here:
        if name in FIXED_SIZE:
            print(f"| {name} | {size:,} | — | same (not per bp) |")
        else:
            print(f"| {name} | {size:,} | {per_bp:.3f} | {per_bp * HG38_BP / 1e9:,.1f} GB |")
    table_rate = info["rows"] / table_s
    amortised = 3 * scored_bp / (pass_s + table_s)
    print(
        f"\nSNV table: {info['rows']:,} rows in {table_s:.2f} s ({table_rate:,.0f} rows/s, one core; "
        f"hg38: {3 * HG38_BP / table_rate / 3600:,.1f} CPU-hours)"
    )
    print(f"tracks pass: {scored_bp:,} bp in {pass_s:.2f} s\n")
    strands = 2 if settings.get("reverse_complement") else 1
    window_bp, stride_bp, passes = (int(x) for x in args.project.split(","))
    tokens_per_bp = (passes + 1) * window_bp / stride_bp  # the masked passes + the embedding pass
    table_tokens = tokens_per_bp * 2 / 3  # both strands, three SNVs per base
    scorer_tokens = 2 * (2 * 500 + 1 + 2)  # score-variants: one forward per strand, ±500 bp flank
    gpu_table = H100_7B_TOKENS_PER_S / SCORER_OVERHEAD * 3600 / table_tokens
    gpu_scorer = H100_7B_TOKENS_PER_S * 3600 / scorer_tokens
    print("| how | where | variants per hour | $ per million variants |")
    print("|---|---|---:|---:|")
    print(
        f"| all-SNV table (tracks pass + table, {strands} strand{'s' * (strands > 1)}) | this CPU, this model "
        f"| {amortised * 3600:,.0f} | — |"
    )
    print(f"| score-variants (both strands) | this CPU, this model | {3600 / per_variant_s:,.0f} | — |")
    print(
        f"| all-SNV table ({tokens_per_bp:.0f} tokens/bp/strand, both strands) | 7B, one H100 (projected) "
        f"| {gpu_table:,.0f} | {GPU_HOUR_USD / gpu_table * 1e6:,.2f} |"
    )
    print(
        f"| score-variants (both strands) | 7B, one H100 (projected) | {gpu_scorer:,.0f} "
        f"| {GPU_HOUR_USD / gpu_scorer * 1e6:,.2f} |"
    )
    for name, rate in PEERS:
        print(f"| {name} | published | {rate:,} | {GPU_HOUR_USD / rate * 1e6:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
