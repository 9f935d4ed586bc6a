"""Science of the outputs, table 1: a checkpoint's held-out loss against bidirectional k-mer baselines.

For each held-out genome (the cohort sheet's validation and test rows) a seeded sample of
``--regions`` stretches of ``--region-bp`` is scored the way `dnafm tracks` scores it (the
tracks WindowScorer: windows of the model's pretraining context, ``--passes`` complementary mask
sets, each base predicted once) and, at the very same positions, by k-mer models
P(base | k left, k right) counted on the sheet's train genomes (dnafm_lib.inference.kmer_baseline,
add-one smoothing). The orders shown run from k = 0 (base composition) up to the first that no
longer lowers the pooled validation loss; "best k-mer" is the best of those, chosen on validation
only. Positions: bases the model scores whose ±max-k context is all A/C/G/T. Loss in nats per base.

    PYTHONPATH=. python benchmarks/science.py --model results/models/demo
    PYTHONPATH=. python benchmarks/science.py --model DIR --smoke          # < 1 minute, demo genomes

The default cohort is config/cohorts/reference_corpus.yaml: run scripts/fetch_corpus.py first
(its genomes are read from the workflow's prepared genomes when present, else from the sheet).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dnafm_lib.core.atomic import atomic_open  # noqa: E402
from dnafm_lib.core.errors import DnafmError  # noqa: E402
from dnafm_lib.inference import kmer_baseline as kmer  # noqa: E402

DEFAULT_COHORT = REPO / "config" / "cohorts" / "reference_corpus.yaml"
SMOKE_COHORT = REPO / "config" / "config.yaml"  # the demo: two train genomes, one validation genome
HELD_OUT = ("validation", "test")


@dataclass
class GenomeScores:
    genome: str
    split: str
    model: list[np.ndarray] = field(default_factory=list)  # per region, NaN where not scored
    kmer: dict[int, list[np.ndarray]] = field(default_factory=dict)
    bases: list[np.ndarray] = field(default_factory=list)  # per region, 0..3 / 4 codes

    def positions(self, max_k: int) -> np.ndarray:
        """Per region concatenated: True where the model and the largest k-mer order both score."""
        return np.concatenate([np.isfinite(m) & np.isfinite(b) for m, b in zip(self.model, self.kmer[max_k])])


def cohort_sheet(cohort: Path):
    """(genome sheet rows, prepared genomes folder) of a cohort file layered over config/config.yaml."""
    import yaml

    from dnafm_lib.data.genome_sheet import read_genome_sheet

    settings = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    settings.update(yaml.safe_load(cohort.read_text()) or {})
    sheet = read_genome_sheet(REPO / settings["genome_sheet"], base_dir=REPO)
    return [row.cells() for row in sheet.rows], REPO / settings.get("results_dir", "results") / "genomes"


def genome_fasta(row: dict, genomes_dir: Path):
    """An open_fasta reader of a genome: the workflow's prepared copy, else the sheet's file (indexed)."""
    from dnafm_lib.data.indexed_fasta import ensure_indexed, open_fasta

    prepared = genomes_dir / row["genome"] / "genome.fa.gz"
    if prepared.exists() and Path(f"{prepared}.fai").exists():
        return open_fasta(prepared)
    location = REPO / row["location"]
    if not location.exists():
        raise DnafmError(
            f"{row['location']}: genome {row['genome']} is not there (run scripts/fetch_corpus.py for the reference corpus)"
        )
    return open_fasta(ensure_indexed(location))


def sample_regions(lengths: dict[str, int], regions: int, region_bp: int, seed: int):
    """A seeded choice of non-overlapping ``region_bp`` tiles (whole contigs where none is that long)."""
    from dnafm_lib.inference.tracks.tiling import Region

    tiles = [
        Region(name, start, start + region_bp)
        for name, length in lengths.items()
        for start in range(0, length - region_bp + 1, region_bp)
    ]
    if not tiles:
        tiles = [Region(name, 0, length) for name, length in lengths.items()]
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(tiles), size=min(regions, len(tiles)), replace=False))
    return [tiles[index] for index in chosen]


def fit(train_rows, genomes_dir: Path, max_k: int, pseudocount: float) -> tuple[dict[int, kmer.KmerBaseline], float]:
    started = time.perf_counter()

    def contigs():
        for row in train_rows:
            yield from kmer.fasta_contig_chunks(genome_fasta(row, genomes_dir))

    baselines = kmer.fit_baselines(contigs(), range(max_k + 1), pseudocount)
    return baselines, time.perf_counter() - started


def score_genome(row, genomes_dir, scorer, baselines, args) -> GenomeScores:
    from dnafm_lib.data.indexed_fasta import fasta_lengths

    fasta = genome_fasta(row, genomes_dir)
    lengths = fasta_lengths(fasta)
    regions = sample_regions(lengths, args.regions, args.region_bp, args.seed)

    def fetch(contig: str, start: int, end: int) -> str:
        return fasta[contig][start:end]

    scores = GenomeScores(row["genome"], row["split"], kmer={k: [] for k in baselines})
    for region_scores in scorer.score_regions(regions, fetch, lengths):
        scores.model.append(region_scores.loss_nats.astype(np.float64))
    for region in regions:
        # the k-mer models see the genome around the region, as far as their context reaches
        low, high = max(0, region.start - args.max_k), min(lengths[region.contig], region.end + args.max_k)
        flanked = fetch(region.contig, low, high)
        inner = slice(region.start - low, region.start - low + region.length)
        scores.bases.append(kmer.encode_bases(flanked)[inner])
        for k, baseline in baselines.items():
            scores.kmer[k].append(baseline.loss_nats(flanked)[inner])
    return scores


def mean_at(values: list[np.ndarray], keep: np.ndarray) -> float:
    joined = np.concatenate(values)[keep]
    return float(joined.mean()) if joined.size else math.nan


def own_composition_nats(scores: GenomeScores, keep: np.ndarray) -> float:
    """Entropy of the genome's own base frequencies at the scored positions (an oracle composition)."""
    codes = np.concatenate(scores.bases)[keep]
    return kmer.composition_entropy_nats(np.bincount(codes, minlength=4)[:4])


def gc_fraction(scores: GenomeScores, keep: np.ndarray) -> float:
    codes = np.concatenate(scores.bases)[keep]
    return float(np.isin(codes, (1, 2)).mean()) if codes.size else math.nan


def table(results: list[GenomeScores], orders: list[int], best: int, max_k: int) -> list[str]:
    k_columns = [f"k={k}" + (" (composition)" if k == 0 else "") for k in orders]
    header = ["genome", "split", "GC", "positions", "model", *k_columns, f"best k-mer (k={best})", "model − best"]
    header.append("own composition")
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]

    def row(name, split, groups):
        keeps = [g.positions(max_k) for g in groups]
        model = _pooled([g.model for g in groups], keeps)
        losses = {k: _pooled([g.kmer[k] for g in groups], keeps) for k in orders}
        positions = sum(int(keep.sum()) for keep in keeps)
        gc = np.mean([gc_fraction(g, keep) for g, keep in zip(groups, keeps)]) if len(groups) == 1 else math.nan
        own = own_composition_nats(groups[0], keeps[0]) if len(groups) == 1 else math.nan
        cells = [name, split, _fmt(gc, "{:.0%}"), f"{positions:,}", _fmt(model)]
        cells += [_fmt(losses[k]) for k in orders]
        cells += [_fmt(losses[best]), _fmt(model - losses[best], "{:+.3f}"), _fmt(own)]
        return "| " + " | ".join(cells) + " |"

    for split in HELD_OUT:
        groups = [g for g in results if g.split == split]
        lines += [row(g.genome, split, [g]) for g in groups]
        if len(groups) > 1:
            lines.append(row(f"**all {split}**", split, groups))
    return lines


def _pooled(per_genome: list[list[np.ndarray]], keeps: list[np.ndarray]) -> float:
    joined = np.concatenate([np.concatenate(values)[keep] for values, keep in zip(per_genome, keeps)])
    return float(joined.mean()) if joined.size else math.nan


def _fmt(value: float, pattern: str = "{:.3f}") -> str:
    return "–" if value is None or not np.isfinite(value) else pattern.format(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="checkpoint directory (AIDO.DNA layout)")
    parser.add_argument("--cohort", type=Path, default=None, help=f"cohort file (default: {DEFAULT_COHORT.name})")
    parser.add_argument("--regions", type=int, default=10, help="sampled regions per held-out genome (default: 10)")
    parser.add_argument("--region-bp", type=int, default=5000, help="bp per sampled region (default: 5000)")
    parser.add_argument("--max-k", type=int, default=kmer.MAX_K, help=f"largest k-mer order (default: {kmer.MAX_K})")
    parser.add_argument("--pseudocount", type=float, default=1.0, help="add-alpha smoothing (default: 1, add-one)")
    parser.add_argument("--passes", type=int, default=7, help="mask passes per window, as dnafm tracks (default: 7)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the regions and the masks (default: 0)")
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    parser.add_argument("--smoke", action="store_true", help="the demo genomes, 3 regions of 500 bp, k ≤ 3, 2 passes")
    args = parser.parse_args(argv)
    if args.smoke:
        args.cohort = args.cohort or SMOKE_COHORT
        args.regions, args.region_bp, args.max_k, args.passes = 3, 500, min(args.max_k, 3), 2
    args.cohort = args.cohort or DEFAULT_COHORT
    try:
        return run(args)
    except DnafmError as error:
        print(f"science.py: error: {error}", file=sys.stderr)
        return 1


def run(args) -> int:
    import dnafm_lib
    from dnafm_lib.core.devices import resolve_device
    from dnafm_lib.inference.tracks.scoring import ScoringSettings, WindowScorer
    from dnafm_lib.model.trained_context import FRAME_TOKENS, trained_context_tokens

    started = time.perf_counter()
    context = trained_context_tokens(args.model)
    if context is None:
        raise DnafmError(f"{args.model}: not a checkpoint directory (no readable config.json)")
    rows, genomes_dir = cohort_sheet(args.cohort)
    train = [row for row in rows if row["split"] == "train"]
    held_out = [row for row in rows if row["split"] in HELD_OUT]
    if not train or not held_out:
        raise DnafmError(f"{args.cohort}: its genome sheet needs train rows and validation or test rows")
    baselines, fit_s = fit(train, genomes_dir, args.max_k, args.pseudocount)
    print(f"k-mer counts of {len(train)} train genomes: {fit_s:.0f} s", file=sys.stderr, flush=True)

    window_bp = min(context - FRAME_TOKENS, args.region_bp)
    settings = ScoringSettings(
        window_bp=window_bp,
        stride_bp=max(1, window_bp // 2),
        passes=args.passes,
        embedding_layer=None,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    device = resolve_device(args.device, "--device")
    scorer = WindowScorer(dnafm_lib.load_model(args.model).to(device), settings, device=str(device))
    score_started = time.perf_counter()
    results = []
    for row in held_out:
        results.append(score_genome(row, genomes_dir, scorer, baselines, args))
        print(f"scored {row['genome']}: {time.perf_counter() - score_started:.0f} s", file=sys.stderr, flush=True)
    score_s = time.perf_counter() - score_started

    # orders and the best one are chosen on validation (all held-out genomes when there is none)
    choosing = [g for g in results if g.split == "validation"] or results
    keeps = [g.positions(args.max_k) for g in choosing]
    validation_loss = {k: _pooled([g.kmer[k] for g in choosing], keeps) for k in baselines}
    orders = kmer.orders_until_no_gain(validation_loss)
    best = kmer.best_order(validation_loss)
    stopped = "its loss stopped improving" if len(orders) <= args.max_k else f"--max-k {args.max_k} was reached"
    train_bases = baselines[0].training_positions
    lines = [
        f"Model `{args.model}` (pretraining context {context} tokens): windows of {window_bp} bp, stride "
        f"{settings.stride_bp}, {args.passes} mask passes, {device}. Held-out sample: {args.regions} × "
        f"{args.region_bp:,} bp per genome (seed {args.seed}). k-mer baselines counted on {len(train)} train "
        f"genomes ({train_bases:,} bases) with pseudocount {args.pseudocount:g}; orders up to k = {orders[-1]}, where "
        f"{stopped} on validation. Loss in nats per base; fit {fit_s:.0f} s, scoring {score_s:.0f} s, "
        f"total {time.perf_counter() - started:.0f} s.",
        "",
        *table(results, orders, best, args.max_k),
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        with atomic_open(args.out) as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
