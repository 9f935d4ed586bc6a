"""Science of the outputs: a checkpoint's held-out loss, its masking shortcut, its coding SNVs.

Table 1 (``--tables loss``): held-out loss against bidirectional k-mer baselines.

For each held-out genome (the cohort sheet's validation and test rows) a seeded sample of
``--regions`` stretches of ``--region-bp`` is scored the way `dnafm tracks` scores it (the
tracks WindowScorer: windows of the model's pretraining context, ``--passes`` complementary mask
sets, each base predicted once) and, at the very same positions, by k-mer models
P(base | k left, k right) counted on the sheet's train genomes (dnafm_lib.inference.kmer_baseline,
add-one smoothing). The orders shown run from k = 0 (base composition) up to the first that no
longer lowers the pooled validation loss; "best k-mer" is the best of those, chosen on validation
only. Positions: bases the model scores whose ±max-k context is all A/C/G/T. Loss in nats per base.

Table 2 (``--tables masking``): the tracks' masking shortcut against exact single-site scoring
(each base masked alone, ``masking: exact``, stride half a window, one strand). On
``--masking-regions`` seeded stretches of ``--masking-region-bp`` per held-out genome, every
setting of passes (3, 5, 7, 10, 15) × window overlap (1×, 1.33×, 2×: stride = window, ¾ and ½ of
it) × reverse complement (off, on), and exact with reverse complement, is compared with it:
Spearman ρ and mean |Δ| of the per-base loss and of the SNV LLRs (log p(alt) − log p(ref), three
per base), and the cost in model input tokens per base (tracks.tiling.forward_tokens_per_bp,
without the embedding pass).

Table 3 (``--tables synonymous``): synonymous vs nonsynonymous SNVs in the held-out genomes'
annotated CDS (the sheet's GFF3; inference.coding_snvs, standard genetic code), up to ``--cds-bp``
of CDS per genome: the AUROC with which each SNV's LLR ranks synonymous above nonsynonymous
changes, for the model (the tracks' ``--passes`` shortcut and exact) and for the k-mer models
(k = 0, the composition null, upward). 0.5 is chance.

    PYTHONPATH=. python benchmarks/science.py --model results/models/demo
    PYTHONPATH=. python benchmarks/science.py --model DIR --smoke          # < 1 minute, demo genomes
    PYTHONPATH=. python benchmarks/science.py --model DIR --cohort config/config.yaml --tables masking,synonymous

The default cohort is config/cohorts/reference_corpus.yaml: run scripts/fetch_corpus.py first
(its genomes are read from the workflow's prepared genomes when present, else from the sheet).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import defaultdict
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
TABLES = ("loss", "masking", "synonymous")
SHORTCUT_PASSES = (3, 5, 7, 10, 15)
#: window overlap → stride as a fraction of the window
OVERLAPS = (("1×", 1.0), ("1.33×", 0.75), ("2×", 0.5))


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
    parser.add_argument(
        "--tables", default=",".join(TABLES), help=f"which tables, of {', '.join(TABLES)} (default: all)"
    )
    parser.add_argument(
        "--masking-regions", type=int, default=2, help="table 2: regions per held-out genome (default: 2)"
    )
    parser.add_argument("--masking-region-bp", type=int, default=2000, help="table 2: bp per region (default: 2000)")
    parser.add_argument(
        "--cds-bp", type=int, default=20000, help="table 3: CDS bp per held-out genome (default: 20000)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the demo genomes, 3 regions of 500 bp, k ≤ 3, 2 passes; 200 and 300 bp for tables 2 and 3",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.cohort = args.cohort or SMOKE_COHORT
        args.regions, args.region_bp, args.max_k, args.passes = 3, 500, min(args.max_k, 3), 2
        args.masking_regions, args.masking_region_bp, args.cds_bp, args.batch_size = 1, 200, 300, 64
    args.cohort = args.cohort or DEFAULT_COHORT
    args.tables = [name.strip() for name in args.tables.split(",") if name.strip()]
    unknown = [name for name in args.tables if name not in TABLES]
    if unknown or not args.tables:
        parser.error(f"--tables: {', '.join(unknown) or 'none given'}: choose from {', '.join(TABLES)}")
    try:
        return run(args)
    except DnafmError as error:
        print(f"science.py: error: {error}", file=sys.stderr)
        return 1


def run(args) -> int:
    import torch

    import dnafm_lib
    from dnafm_lib.core.devices import resolve_device
    from dnafm_lib.inference.tracks.scoring import ScoringSettings, WindowScorer
    from dnafm_lib.model.trained_context import FRAME_TOKENS, trained_context_tokens

    started = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
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
    model = dnafm_lib.load_model(args.model).to(device)
    scorer = WindowScorer(model, settings, device=str(device))
    sections = []
    if "loss" in args.tables:
        sections.append(loss_section(args, held_out, genomes_dir, scorer, baselines, settings, context, device, train))
        sections[-1][0] += f" Fit {fit_s:.0f} s."
    if "masking" in args.tables:
        sections.append(masking_section(args, held_out, genomes_dir, model, settings, device))
    if "synonymous" in args.tables:
        sections.append(synonymous_section(args, held_out, genomes_dir, model, settings, device, baselines))
    head = (
        f"Model `{args.model}` (pretraining context {context} tokens), cohort `{args.cohort.name}`, {device}, "
        f"{torch.get_num_threads()} torch threads; total {time.perf_counter() - started:.0f} s."
    )
    text = "\n\n".join([head, *("\n".join(lines) for lines in sections)]) + "\n"
    print(text, end="")
    if args.out:
        with atomic_open(args.out) as handle:
            handle.write(text)
    return 0


def loss_section(args, held_out, genomes_dir, scorer, baselines, settings, context, device, train) -> list[str]:
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
    return [
        f"**Held-out loss against k-mer baselines.** Windows of {settings.window_bp} bp, stride "
        f"{settings.stride_bp}, {args.passes} mask passes. Held-out sample: {args.regions} × "
        f"{args.region_bp:,} bp per genome (seed {args.seed}). k-mer baselines counted on {len(train)} train "
        f"genomes ({train_bases:,} bases) with pseudocount {args.pseudocount:g}; orders up to k = {orders[-1]}, where "
        f"{stopped} on validation. Loss in nats per base; scoring {score_s:.0f} s.",
        "",
        *table(results, orders, best, args.max_k),
    ]


def _probs(model, settings, device, regions, fetch, lengths) -> np.ndarray:
    """(bases, 4) probabilities of ``regions`` concatenated, as `dnafm tracks` with ``settings`` scores them."""
    from dnafm_lib.inference.tracks.scoring import WindowScorer

    scored = WindowScorer(model, settings, device=str(device)).score_regions(regions, fetch, lengths)
    return np.concatenate([r.probs for r in scored]).astype(np.float64)


def _loss_and_llrs(probs: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-base loss and the three SNV LLRs per base (alt order A, C, G, T without the reference)."""
    with np.errstate(divide="ignore"):
        logs = np.log(probs)
    rows = np.arange(truth.size)
    ref = logs[rows, truth]
    alts = np.array([[a for a in range(4) if a != t] for t in truth]).reshape(-1, 3)
    return -ref, (logs[rows[:, None], alts] - ref[:, None]).ravel()


def masking_section(args, held_out, genomes_dir, model, settings, device) -> list[str]:
    from dataclasses import replace

    from scipy.stats import spearmanr

    from dnafm_lib.data.indexed_fasta import fasta_lengths
    from dnafm_lib.inference.tracks.tiling import forward_tokens_per_bp

    started = time.perf_counter()
    w = settings.window_bp
    exact = replace(settings, masking="exact", stride_bp=max(1, w // 2), reverse_complement=False)
    exact_both = replace(exact, reverse_complement=True)
    configs = [("exact", 1, "2×", exact.stride_bp, True)]
    for reverse in (False, True):
        for label, fraction in OVERLAPS:
            for passes in SHORTCUT_PASSES:
                configs.append(("passes", passes, label, max(1, round(w * fraction)), reverse))
    per_config: dict[int, list[np.ndarray]] = {i: [] for i in range(len(configs))}
    reference: list[np.ndarray] = []
    reference_both: list[np.ndarray] = []
    truths: list[np.ndarray] = []
    bases = 0
    for row in held_out:
        fasta = genome_fasta(row, genomes_dir)
        lengths = fasta_lengths(fasta)
        regions = sample_regions(lengths, args.masking_regions, args.masking_region_bp, args.seed)

        def fetch(contig: str, start: int, end: int, fasta=fasta) -> str:
            return fasta[contig][start:end]

        reference.append(_probs(model, exact, device, regions, fetch, lengths))
        reference_both.append(_probs(model, exact_both, device, regions, fetch, lengths))
        truths.append(np.concatenate([kmer.encode_bases(fetch(r.contig, r.start, r.end)) for r in regions]))
        bases += sum(r.length for r in regions)
        for i, (masking, passes, _, stride, reverse) in enumerate(configs):
            if masking == "exact":
                per_config[i].append(reference_both[-1])
                continue
            config = replace(settings, masking=masking, passes=passes, stride_bp=stride, reverse_complement=reverse)
            per_config[i].append(_probs(model, config, device, regions, fetch, lengths))
        print(f"masking: {row['genome']}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    truth = np.concatenate(truths)
    ref_single, ref_both = np.concatenate(reference), np.concatenate(reference_both)
    lines = [
        f"**The masking shortcut against exact single-site scoring.** {args.masking_regions} × "
        f"{args.masking_region_bp:,} bp per held-out genome ({len(held_out)} genomes, {bases:,} bases, seed "
        f"{args.seed}); windows of {w} bp. Reference: exact (each base masked alone), stride {exact.stride_bp} "
        f"(2× overlap), {forward_tokens_per_bp(w, exact.stride_bp, 1, False, False, 'exact'):.0f} tokens per base "
        f"and strand; with the same reverse-complement setting as the row (the first row: exact on both strands "
        f"against exact on one). ρ: Spearman; mean abs Δ: mean absolute difference (nats). Tokens per base without the "
        f"embedding pass; {time.perf_counter() - started:.0f} s.",
        "",
        "| masking | passes | overlap | stride | reverse complement | tokens/base | loss ρ | loss mean abs Δ "
        "| LLR ρ | LLR mean abs Δ |",
        "|" + " --- |" * 10,
    ]
    for i, (masking, passes, label, stride, reverse) in enumerate(configs):
        probs = np.concatenate(per_config[i])
        # the shortcut with both strands is measured against exact with both strands; exact with both
        # strands against exact on one (what averaging the strands changes by itself)
        ref_probs = ref_both if reverse and masking == "passes" else ref_single
        keep = (truth < 4) & np.isfinite(probs).all(axis=1) & np.isfinite(ref_probs).all(axis=1)
        loss, llr = _loss_and_llrs(probs[keep], truth[keep].astype(np.int64))
        ref_loss, ref_llr = _loss_and_llrs(ref_probs[keep], truth[keep].astype(np.int64))
        tokens = forward_tokens_per_bp(w, stride, passes, reverse, False, masking)
        cells = [
            masking,
            "–" if masking == "exact" else str(passes),
            label,
            str(stride),
            "on" if reverse else "off",
            f"{tokens:.1f}",
            _fmt(spearmanr(loss, ref_loss).statistic, "{:.4f}"),
            _fmt(float(np.abs(loss - ref_loss).mean()), "{:.4f}"),
            _fmt(spearmanr(llr, ref_llr).statistic, "{:.4f}"),
            _fmt(float(np.abs(llr - ref_llr).mean()), "{:.4f}"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def synonymous_section(args, held_out, genomes_dir, model, settings, device, baselines) -> list[str]:
    from dataclasses import replace

    from dnafm_lib.data.indexed_fasta import fasta_lengths
    from dnafm_lib.inference.coding_snvs import auroc, coding_snvs, read_coding_sequences, snv_llrs
    from dnafm_lib.inference.tracks.tiling import Region

    started = time.perf_counter()
    exact = replace(settings, masking="exact")
    ks = sorted(baselines)
    header = ["genome", "split", "CDS bp", "SNVs", "synonymous", f"model, {settings.passes} passes", "model, exact"]
    header += [f"k={k}" + (" (composition)" if k == 0 else "") for k in ks]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    pooled: dict[str, list[np.ndarray]] = defaultdict(list)
    scored_genomes = 0
    for row in held_out:
        if not row.get("annotation"):
            continue
        fasta = genome_fasta(row, genomes_dir)
        lengths = fasta_lengths(fasta)

        def fetch(contig: str, start: int, end: int, fasta=fasta) -> str:
            return fasta[contig][start:end]

        sequences = [cds for cds in read_coding_sequences(REPO / row["annotation"]) if cds.contig in lengths]
        rng = np.random.default_rng(args.seed)
        chosen, cds_bp = [], 0
        for index in rng.permutation(len(sequences)):
            if cds_bp >= args.cds_bp:
                break
            chosen.append(sequences[index])
            cds_bp += sum(e - s for s, e in sequences[index].segments)
        snvs = coding_snvs(chosen, fetch)
        if not len(snvs):
            continue
        scored_genomes += 1
        regions = _covering_regions(snvs, Region)
        scores = {
            "passes": _region_log_probs(np.log(_probs(model, settings, device, regions, fetch, lengths)), regions),
            "exact": _region_log_probs(np.log(_probs(model, exact, device, regions, fetch, lengths)), regions),
        }
        for k, baseline in baselines.items():
            flank = args.max_k
            parts = []
            for r in regions:
                low, high = max(0, r.start - flank), min(lengths[r.contig], r.end + flank)
                parts.append(baseline.log_probs(fetch(r.contig, low, high))[r.start - low : r.start - low + r.length])
            scores[f"k={k}"] = _region_log_probs(np.concatenate(parts), regions)
        llrs = {name: snv_llrs(snvs, lookup) for name, lookup in scores.items()}
        for name, values in llrs.items():
            pooled[name].append(values)
        pooled["label"].append(snvs.synonymous)
        lines.append(_auroc_row(row["genome"], row["split"], f"{cds_bp:,}", snvs.synonymous, llrs, ks, auroc))
        print(f"synonymous: {row['genome']}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    if scored_genomes > 1:
        label = np.concatenate(pooled.pop("label"))
        joined = {name: np.concatenate(values) for name, values in pooled.items()}
        lines.append(_auroc_row("**all**", "–", "–", label, joined, ks, auroc))
    intro = (
        f"**Synonymous vs nonsynonymous SNVs in held-out CDS.** Up to {args.cds_bp:,} bp of annotated CDS per "
        f"held-out genome (seeded choice of genes), every SNV of their codons; AUROC of the LLR "
        f"log p(alt) − log p(ref) ranking synonymous above nonsynonymous (0.5 = chance). Model: windows of "
        f"{settings.window_bp} bp, stride {settings.stride_bp}, forward strand; k-mer models counted on the "
        f"train genomes. {time.perf_counter() - started:.0f} s."
    )
    if not scored_genomes:
        return [intro, "", "No held-out genome has annotated CDS (the sheet's annotation column)."]
    return [intro, "", *lines]


def _auroc_row(genome, split, cds_bp, label, llrs, ks, auroc) -> str:
    cells = [genome, split, cds_bp, f"{label.size:,}", f"{label.mean():.0%}"]
    cells += [_fmt(auroc(llrs[name], label)) for name in ("passes", "exact", *(f"k={k}" for k in ks))]
    return "| " + " | ".join(cells) + " |"


def _covering_regions(snvs, Region) -> list:
    """Disjoint regions covering every SNV position: runs of positions less than 100 bp apart."""
    regions = []
    for contig in dict.fromkeys(snvs.contig):
        positions = np.unique(snvs.position[snvs.contig == contig])
        cuts = np.flatnonzero(np.diff(positions) > 100) + 1
        for run in np.split(positions, cuts):
            regions.append(Region(contig, int(run[0]), int(run[-1]) + 1))
    return regions


def _region_log_probs(logs: np.ndarray, regions):
    """A ``log_probs_at(contig, positions)`` over regions' concatenated (bases, 4) log-probabilities."""
    starts = np.cumsum([0] + [r.length for r in regions])

    def at(contig: str, positions: np.ndarray) -> np.ndarray:
        out = np.full((positions.size, 4), np.nan)
        for index, region in enumerate(regions):
            if region.contig != contig:
                continue
            inside = (positions >= region.start) & (positions < region.end)
            out[inside] = logs[starts[index] + positions[inside] - region.start]
        return out

    return at


if __name__ == "__main__":
    sys.exit(main())
