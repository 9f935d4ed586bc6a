"""dnafm tracks: masked-LM and embedding tracks (bigWig/BED) of a genome, with IGV files.

One shot, for a whole genome:

    dnafm tracks --fasta genome.fa.gz --model results/models/demo --out-dir tracks/

or step by step, as the Snakemake rules run it (one `score` job per chunk):

    dnafm tracks plan    --fai genome.fa.gz.fai --chunk-bp 1000000 --out chunks.tsv
    dnafm tracks score   --fasta genome.fa.gz --plan chunks.tsv --chunk chunk00000 --model DIR --out chunk00000.npz
                         [--ranks 8 --batch-size auto]   (8 GPUs of a node on one chunk, each batch as large as fits)
    dnafm tracks gather  chunk*.npz --chrom-sizes chrom.sizes --out-dir tracks/
    dnafm tracks install-igv --out igv.min.js
    dnafm tracks browser --out-dir tracks/ --fasta genome.fa.gz --genome NAME --model-name NAME --igv-js igv.min.js

The FASTA may be plain, gzip (as NCBI serves it), bgzip, xz, bzip2 or zstd. Windows longer than the context the
model was pretrained with (config.json dnafm_pretraining_context_tokens; 4000 when absent) get
a warning. tracks.json records the model (path, weights sha256, config), the settings, device,
versions and times, and each scoring job's throughput (tokens/s, batch size, ranks, device).
"""

HELP = "genome-wide MLM-loss and embedding tracks (bigWig/BED), IGV session, igv.html and a UCSC hub"


def _scoring_defaults():
    """The scoring options' defaults: ScoringSettings' own (so --help and the library agree)."""
    from dnafm_lib.inference.tracks.scoring import ScoringSettings

    return ScoringSettings()


def _scoring_arguments(parser, *, with_bin: bool = True):
    # one add_argument per flag, inline on purpose: each has its own type, default and help
    defaults = _scoring_defaults()
    group = parser.add_argument_group("scoring")
    group.add_argument(
        "--window-bp",
        type=int,
        default=defaults.window_bp,
        help="window length in nt (at most 3998, the model's context minus [CLS]/[EOS])",
    )
    group.add_argument(
        "--stride-bp",
        type=int,
        default=defaults.stride_bp,
        help="distance between window starts; each base is scored from the window whose centre is nearest",
    )
    group.add_argument(
        "--passes",
        type=int,
        default=defaults.passes,
        help="masking passes per window (complementary masks; 7 ≈ 14%% masked per pass)",
    )
    group.add_argument(
        "--masking",
        choices=("passes", "exact"),
        default=defaults.masking,
        help="passes: each base masked with 1/--passes of its window; exact: each base masked alone "
        "(one forward per base, --window-bp tokens per base and strand; --passes unused)",
    )
    group.add_argument(
        "--reverse-complement",
        action="store_true",
        help="also score the reverse complement and average the two strands' probabilities",
    )
    group.add_argument(
        "--layer",
        default=str(defaults.embedding_layer),
        help="hidden-state index for embeddings (0 = embeddings, -1 = final output), or 'none'",
    )
    if with_bin:
        group.add_argument("--bin-bp", type=int, default=defaults.bin_bp, help="embedding bin size in bp")
    group.add_argument(
        "--batch-size",
        default=str(defaults.batch_size),
        help="windows per forward pass, or 'auto': the largest that fits the device's memory (probed at the "
        "window length; an out-of-memory error halves it and scores the chunk again)",
    )
    group.add_argument("--seed", type=int, default=defaults.seed, help="seed of the mask assignment, PCA and k-means")
    group.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda or cuda:N")
    group.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")


def _gather_arguments(parser):
    from dnafm_lib.inference.tracks.gather import DEFAULT_N_CLUSTERS

    parser.add_argument(
        "--n-clusters", type=int, default=DEFAULT_N_CLUSTERS, help="k-means clusters of the embedding bins"
    )
    parser.add_argument("--annotation", help="GFF3 of the genome: adds an enrichment table cluster × feature type")
    parser.add_argument(
        "--embeddings",
        choices=("full", "pcs"),
        default="full",
        help="keep the embedding bins as the full float16 array (full) or only their top PCs and the PCA (pcs)",
    )
    from dnafm_lib.inference.tracks.catalog import DEFAULT_OUTPUTS

    parser.add_argument(
        "--outputs",
        default=",".join(DEFAULT_OUTPUTS),
        help="comma-separated per-base outputs to write (default all: %(default)s); snv_table is the "
        "tabix-indexed all-SNV table, snv_min_llr each base's lowest SNV LLR as a bigWig",
    )


def add_arguments(parser):
    import argparse

    parser.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the usage examples' lines
    # argparse matches abbreviations of this parser's options against every argument, the STEP's
    # too: `tracks plan --out X` would read as an ambiguous --out-dir/--outputs
    parser.allow_abbrev = False
    _add_one_shot_options(parser)
    _scoring_arguments(parser)
    _gather_arguments(parser)
    sub = parser.add_subparsers(dest="tracks_command", metavar="STEP")
    _add_plan_step(sub)
    _add_score_step(sub)
    _add_gather_step(sub)
    _add_browser_step(sub)
    _add_install_igv_step(sub)


def _add_one_shot_options(parser):
    from dnafm_lib.inference.tracks.plan import DEFAULT_CHUNK_BP

    parser.add_argument(
        "--fasta",
        help="one-shot: the genome FASTA, plain, gzip, bgzip, xz, bzip2 or zstd (indexes are written beside it, "
        "or one faidx cannot index as it is, such as gzip, is copied to an indexed bgzip in OUT_DIR/genome/)",
    )
    parser.add_argument("--model", help="one-shot: a checkpoint directory (AIDO.DNA layout) or a preset name")
    parser.add_argument(
        "--out-dir", help="one-shot: where the tracks go (finished chunks wait in OUT_DIR/chunks until the gather)"
    )
    parser.add_argument("--chunk-bp", type=int, default=DEFAULT_CHUNK_BP, help="one-shot: bp per chunk (bounds memory)")
    parser.add_argument("--igv-js", help="one-shot: igv.min.js to build igv.html with (default: no browser files)")
    parser.add_argument(
        "--keep-chunks",
        action="store_true",
        help="one-shot: keep OUT_DIR/chunks after the gather (default: removed once the tracks are written)",
    )
    parser.add_argument("--genome-name", help="one-shot: genome name shown in the browser files")


def _add_plan_step(sub):
    from dnafm_lib.inference.tracks.plan import DEFAULT_CHUNK_BP

    plan = sub.add_parser("plan", help="cut a genome into chunks (one scoring job each)")
    plan.add_argument("--fai", required=True, help="the genome's .fai (or chrom.sizes)")
    plan.add_argument("--chunk-bp", type=int, default=DEFAULT_CHUNK_BP, help="bp per chunk")
    plan.add_argument(
        "--bin-bp", type=int, default=_scoring_defaults().bin_bp, help="chunks are cut at multiples of this"
    )
    plan.add_argument("--out", required=True, help="chunk plan TSV (chunk contig start end)")


def _add_score_step(sub):
    score = sub.add_parser("score", help="score one chunk into a .npz of per-base arrays and bin means")
    score.add_argument("--fasta", required=True, help="the genome FASTA (plain, gzip, bgzip, xz, bzip2 or zstd)")
    score.add_argument("--plan", required=True, help="chunk plan TSV from `dnafm tracks plan`")
    score.add_argument("--chunk", required=True, help="chunk id from the plan")
    score.add_argument("--model", required=True, help="a checkpoint directory (AIDO.DNA layout) or a preset name")
    score.add_argument("--out", required=True, help="the chunk's .npz")
    score.add_argument(
        "--ranks",
        type=int,
        default=1,
        help="processes scoring the chunk together, one per GPU (torchrun on this node; gloo on the CPU); "
        "rank 0 writes the file, the same bytes as one rank's",
    )
    _scoring_arguments(score)


def _add_gather_step(sub):
    gather = sub.add_parser("gather", help="chunk files → one bigWig per track, embeddings, segments, enrichment")
    gather.add_argument("chunks", nargs="+", help="chunk .npz files in plan order")
    gather.add_argument("--chrom-sizes", required=True, help="chrom.sizes or .fai: bigWig header and order")
    gather.add_argument("--out-dir", required=True)
    gather.add_argument("--seed", type=int, default=_scoring_defaults().seed)
    gather.add_argument("--fasta", help="the genome's indexed FASTA: reference bases of the SNV outputs")
    gather.add_argument("--model-name", help="the model named in the SNV table's header (default: the --out-dir name)")
    _gather_arguments(gather)


def _add_browser_step(sub):
    browser = sub.add_parser(
        "browser", help="igv_session.xml, igv.html (+ igv.min.js) and a UCSC hub for a tracks directory"
    )
    browser.add_argument("--out-dir", required=True, help="the tracks directory")
    browser.add_argument(
        "--fasta",
        required=True,
        help="the genome FASTA (plain, gzip, bgzip, xz, bzip2 or zstd; IGV reads it by relative path)",
    )
    browser.add_argument("--genome", required=True, help="genome name")
    browser.add_argument("--model-name", required=True, help="model name")
    browser.add_argument("--igv-js", required=True, help="igv.min.js (see `dnafm tracks install-igv`)")
    browser.add_argument("--annotation", help="GFF3 shown as a track")
    browser.add_argument("--assembly", help="assembly name for the hub's genomes.txt (default: the genome name)")
    browser.add_argument("--hub-email", default="", help="contact address for hub.txt")


def _add_install_igv_step(sub):
    install = sub.add_parser("install-igv", help="npm install the pinned igv.js and copy its dist file")
    install.add_argument("--out", required=True, help="where igv.min.js goes")
    install.add_argument("--version", default=None, help="igv.js version (default: the tested pin)")


def _settings(args, bin_bp=None):
    """The flags' ScoringSettings, checked; an error names the flag (``--window-bp``, ``--layer``)."""
    from dnafm_lib.core.settings import Layer, Origin
    from dnafm_lib.inference.tracks.scoring import ScoringSettings

    flags = Origin(prefix="--", dashes=True, spelled={"embedding_layer": "--layer"})
    values = {
        "window_bp": args.window_bp,
        "stride_bp": args.stride_bp,
        "passes": args.passes,
        "masking": args.masking,
        "reverse_complement": args.reverse_complement,
        "bin_bp": bin_bp or args.bin_bp,
        "seed": args.seed,
    }
    texts = {}
    if str(args.batch_size).strip().lower() == "auto":
        values["batch_size"] = "auto"
    else:  # read as the field's integer (or refused naming --batch-size)
        texts["batch_size"] = str(args.batch_size)
    if str(args.layer).lower() in ("none", "null", ""):
        values["embedding_layer"] = None
    else:  # an index, read as the field's int
        texts["embedding_layer"] = str(args.layer)
    return ScoringSettings.load(Layer(values, flags), Layer.from_text(ScoringSettings, texts, flags))


def _threads(args):
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def run(args) -> int:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    steps = {
        "plan": _run_plan,
        "score": _run_score,
        "gather": _run_gather,
        "browser": _run_browser,
        "install-igv": _run_install_igv,
    }
    steps.get(args.tracks_command, _run_one_shot)(args)
    return 0


def _run_plan(args):
    from dnafm_lib.inference.tracks.plan import write_chunk_plan

    ids = write_chunk_plan(args.fai, args.out, args.chunk_bp, args.bin_bp)
    print(f"{args.out}: {len(ids)} chunks")


def _run_score(args):
    import os

    from dnafm_lib.core.errors import DnafmError
    from dnafm_lib.inference.tracks.plan import chunk_regions

    if args.ranks < 1:
        raise DnafmError(f"--ranks must be at least 1, got {args.ranks}")
    settings = _settings(args)
    regions = chunk_regions(args.plan, args.chunk)  # a bad plan or chunk id: refused before any rank starts
    if args.ranks > 1 and not ("RANK" in os.environ and "WORLD_SIZE" in os.environ):
        _launch_score_ranks(args)
        return
    _score_this_rank(args, regions, settings)


def _launch_score_ranks(args):
    """``dnafm tracks score`` again under torchrun on this node, one process per rank."""
    import subprocess

    from dnafm_lib.core.errors import DnafmError
    from dnafm_lib.train.launch import torchrun_command

    command = torchrun_command(_score_rank_args(args), nproc_per_node=args.ranks, subcommand=("tracks", "score"))
    returncode = subprocess.run(command).returncode
    if returncode != 0:
        raise DnafmError(f"{args.out}: {args.ranks} scoring ranks under torchrun exited with status {returncode}")


def _score_rank_args(args) -> list[str]:
    """The score step's own flags, for its ranks (``--ranks`` included: a rank knows the world it joins)."""
    argv = ["--fasta", args.fasta, "--plan", args.plan, "--chunk", args.chunk, "--model", args.model]
    argv += ["--out", args.out, "--ranks", str(args.ranks), "--window-bp", str(args.window_bp)]
    argv += ["--stride-bp", str(args.stride_bp), "--passes", str(args.passes), "--layer", str(args.layer)]
    argv += ["--bin-bp", str(args.bin_bp), "--batch-size", str(args.batch_size), "--seed", str(args.seed)]
    argv += ["--device", args.device, "--threads", str(args.threads)]
    return argv + (["--reverse-complement"] if args.reverse_complement else [])


def _score_this_rank(args, regions, settings):
    import os

    from dnafm_lib.core.devices import resolve_device
    from dnafm_lib.core.errors import DnafmError
    from dnafm_lib.data.indexed_fasta import ensure_indexed
    from dnafm_lib.inference.tracks.provenance import scoring_provenance
    from dnafm_lib.inference.tracks.score import load_scoring_model, score_chunk
    from dnafm_lib.inference.tracks.scoring import Ranks
    from dnafm_lib.model.trained_context import warn_if_longer

    ranks = Ranks(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))
    if ranks.world != args.ranks:
        raise DnafmError(f"--ranks {args.ranks}, but torchrun started {ranks.world} processes")
    _threads(args)
    device = resolve_device(args.device, "tracks.device")
    if ranks.world > 1:
        import torch
        import torch.distributed as dist

        if device.type == "cuda":  # one GPU per rank, in the order torchrun numbers them
            local_rank = int(os.environ.get("LOCAL_RANK", 0))
            if local_rank >= torch.cuda.device_count():
                raise DnafmError(
                    f"--ranks {args.ranks}: rank {local_rank} has no GPU of its own "
                    f"(PyTorch sees {torch.cuda.device_count()}); ask for as many GPUs as ranks"
                )
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        elif not args.threads:  # ranks on one machine share its cores
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // ranks.world))
        dist.init_process_group("gloo")  # the partial sums are host arrays
    device = str(device)
    if ranks.rank == 0:
        warn_if_longer(args.model, settings.window_bp)
    try:
        model = load_scoring_model(args.model, device)
        score_chunk(
            ensure_indexed(args.fasta),
            regions,
            model,
            settings,
            args.out,
            device,
            scoring_provenance(args.model, device),
            ranks,
        )
    finally:
        if ranks.world > 1:
            import torch.distributed as dist

            dist.destroy_process_group()


def _check_annotation(annotation, fasta_name, contigs) -> None:
    """The annotation's seqids against the genome's records: an error when none match, a warning when some do not."""
    import sys

    from dnafm_lib.data.gff import match_annotation

    warning = match_annotation(annotation, fasta_name, contigs)
    if warning:
        print(f"dnafm tracks: warning: {warning}", file=sys.stderr)


def _run_gather(args):
    from dnafm_lib.inference.tracks.gather import gather_tracks
    from dnafm_lib.inference.tracks.writers import read_chrom_sizes

    if args.annotation:
        _check_annotation(args.annotation, args.chrom_sizes, [name for name, _ in read_chrom_sizes(args.chrom_sizes)])
    summary = gather_tracks(  # keyword arguments spelled out on purpose
        args.chunks,
        args.chrom_sizes,
        args.out_dir,
        n_clusters=args.n_clusters,
        gff_path=args.annotation,
        seed=args.seed,
        embeddings=args.embeddings,
        outputs=_outputs(args),
        fasta_path=args.fasta,
        model_name=args.model_name,
    )
    print(f"{args.out_dir}: {summary['scored_bp']} bases scored, {len(summary['tracks'])} tracks")


def _outputs(args) -> tuple[str, ...]:
    from dnafm_lib.inference.tracks.catalog import output_files

    outputs = tuple(name.strip() for name in args.outputs.split(",") if name.strip())
    output_files(outputs)  # one error naming an unknown output
    return outputs


def _run_browser(args):
    from dnafm_lib.core.output_dir import check_output_dir
    from dnafm_lib.data.indexed_fasta import ensure_indexed, fasta_lengths, open_fasta
    from dnafm_lib.inference.tracks.browser import write_browser_files
    from dnafm_lib.inference.tracks.gather import TRACKS_KIND

    fasta = ensure_indexed(args.fasta)
    if args.annotation:
        _check_annotation(args.annotation, args.fasta, fasta_lengths(open_fasta(fasta)))
    check_output_dir(args.out_dir, TRACKS_KIND)  # the browser files join a gather's tracks
    write_browser_files(
        args.out_dir,
        fasta,
        args.genome,
        args.model_name,
        args.igv_js,
        annotation=args.annotation,
        assembly=args.assembly,
        hub_email=args.hub_email,
    )


def _run_install_igv(args):
    from dnafm_lib.inference.tracks.igv import IGV_JS_VERSION, install_igv_js

    install_igv_js(args.out, args.version or IGV_JS_VERSION)


def _run_one_shot(args):
    from pathlib import Path

    from dnafm_lib.core.errors import DnafmError
    from dnafm_lib.core.output_dir import check_output_dir, claim_output_dir
    from dnafm_lib.data.indexed_fasta import ensure_indexed, fasta_lengths, open_fasta
    from dnafm_lib.inference.tracks.gather import TRACKS_KIND
    from dnafm_lib.inference.tracks.hub import check_hub_names
    from dnafm_lib.inference.tracks.one_shot import run_genome
    from dnafm_lib.model.trained_context import warn_if_longer

    missing = [
        flag
        for flag, value in (("--fasta", args.fasta), ("--model", args.model), ("--out-dir", args.out_dir))
        if not value
    ]
    if missing:
        raise DnafmError(
            f"one-shot tracks need {', '.join(missing)} (or a STEP: plan, score, gather, browser, install-igv)"
        )
    settings = _settings(args)  # before anything is written under --out-dir
    genome_name = args.genome_name or Path(args.fasta).name.split(".")[0]
    if args.igv_js:  # the browser files come last: their names are checked before hours of scoring
        check_hub_names(genome_name, genome_name, Path(args.model).name)
    inputs = (args.fasta, args.model, args.annotation, args.igv_js)
    check_output_dir(args.out_dir, TRACKS_KIND, inputs=inputs)  # refused before any work
    _threads(args)
    fasta = ensure_indexed(args.fasta, cache_dir=Path(args.out_dir) / "genome")  # a bad FASTA writes nothing
    if args.annotation:
        _check_annotation(args.annotation, args.fasta, fasta_lengths(open_fasta(fasta)))
    claim_output_dir(args.out_dir, TRACKS_KIND, inputs=inputs, allowed=("genome",))
    warn_if_longer(args.model, settings.window_bp)
    summary = run_genome(
        fasta,
        args.model,
        args.out_dir,
        settings,
        chunk_bp=args.chunk_bp,
        n_clusters=args.n_clusters,
        annotation=args.annotation,
        device=args.device,
        genome_name=genome_name,
        igv_js=args.igv_js,
        keep_chunks=args.keep_chunks,
        embeddings=args.embeddings,
        outputs=_outputs(args),
    )
    print(f"{args.out_dir}: {summary['scored_bp']} bases scored, {len(summary['tracks'])} tracks")
