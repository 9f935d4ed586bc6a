"""dnafm generate: new sequences from the masked-LM encoder by iterative unmasking.

Start from a sequence whose positions to fill are [MASK], predict them all, commit the most
confident under a schedule, repeat for --steps (masked diffusion, MaskGIT-style). Only A, C, G
and T are ever drawn.

  unconditional:  dnafm generate --model results/models/demo --length 200 --n-samples 8 --out samples.fa
  in-painting:    dnafm generate --model M --template ACGTNNNNNNNNACGT --out filled.fa
                  dnafm generate --model M --fasta genome.fa --region chr1:1001-1200 \\
                      --mask-region chr1:1051-1150 --out filled.fa
  guided:         dnafm generate --model M --length 200 --guide runs/cds/best --target 1 --out cds_like.fa

In-painting keeps every base outside the positions to fill exactly as given (case included);
in a template N marks them, in a --region its N (and other ambiguity codes) and each
--mask-region span. With --guide, each step scores --guide-candidates completed proposals with
the fine-tuned classifier (probability of class --target) or regressor (closeness to the value
--target) and keeps the best.

Writes --out (FASTA; each header holds the sample's settings) and --tsv (default: --out with a
.tsv suffix): per sample its length, generated bases, mean log-likelihood of the generated
bases under the model (nats, at the step each was committed), GC content of the sequence and of
the generated bases, and the guide's score of the final sequence. Both files appear whole or
not at all. The same --seed gives the same sequences on CPU.
"""

import argparse

HELP = "generate or in-paint sequences with the masked-LM encoder (optionally guided by a classifier)"


def add_arguments(parser):
    from dnafm_lib.inference.generate import SCHEDULES, SamplerSettings

    defaults = SamplerSettings()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    _add_io_options(parser)
    _add_source_options(parser)
    _add_sampling_options(parser, SCHEDULES, defaults)
    _add_guidance_options(parser, defaults)


def _add_io_options(parser):
    parser.add_argument(
        "--model", required=True, help="a checkpoint directory in the AIDO.DNA layout, or a preset (tiny, 300m, 7b)"
    )
    parser.add_argument("--out", required=True, help="output FASTA of the samples")
    parser.add_argument("--tsv", help="per-sample table (default: --out with its .fa/.fasta suffix replaced by .tsv)")


def _add_source_options(parser):
    source = parser.add_argument_group("what to generate (one of --length, --template, --fasta)")
    exclusive = source.add_mutually_exclusive_group(required=True)
    exclusive.add_argument("--length", type=int, metavar="N", help="unconditional: N new bases per sample")
    exclusive.add_argument(
        "--template", metavar="SEQ", help="in-paint SEQ: A/C/G/T are kept, N marks the positions to fill"
    )
    exclusive.add_argument(
        "--fasta",
        metavar="F",
        help="in-paint --region of this FASTA (plain, gzip, bgzip, xz, bzip2 or zstd; validated once, and one faidx cannot index as it is copied once to an indexed bgzip in ~/.cache/dnafm/fasta)",
    )
    source.add_argument(
        "--region",
        metavar="CHR:START-END",
        help="with --fasta: the region to in-paint, 1-based inclusive; its N bases are filled",
    )
    source.add_argument(
        "--mask-region",
        action="append",
        default=[],
        metavar="[CHR:]START-END",
        help="also fill this span (repeatable): genome coordinates inside --region, or 1-based positions of --template",
    )
    source.add_argument("--n-samples", type=int, default=1, metavar="K", help="sequences to generate (default 1)")


def _add_sampling_options(parser, schedules, defaults):
    sampler = parser.add_argument_group("sampling")  # one add_argument per flag, inline on purpose
    sampler.add_argument(
        "--steps",
        type=int,
        default=defaults.steps,
        help=f"unmasking steps; at most one per base to fill (default {defaults.steps})",
    )
    sampler.add_argument(
        "--schedule",
        choices=schedules,
        default=defaults.schedule,
        help=f"how many bases stay masked after each step: cosine commits few early, "
        f"linear the same number each step (default {defaults.schedule})",
    )
    sampler.add_argument(
        "--temperature",
        type=float,
        default=defaults.temperature,
        help=f"softmax temperature over A/C/G/T; 0 = always the most likely base (default {defaults.temperature:g})",
    )
    sampler.add_argument(
        "--top-k",
        type=int,
        default=defaults.top_k,
        help=f"draw among the k most likely bases, 1-4; 0 = all four (default {defaults.top_k})",
    )
    sampler.add_argument(
        "--top-p",
        type=float,
        default=defaults.top_p,
        help=f"nucleus sampling: draw among the most likely bases whose probabilities sum "
        f"to p (default {defaults.top_p:g} = off)",
    )
    sampler.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help=f"sample i draws from a generator seeded by (seed, i): same seed, same "
        f"sequences on CPU (default {defaults.seed})",
    )
    sampler.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help=f"samples per forward pass (default {defaults.batch_size})",
    )
    sampler.add_argument(
        "--device", default="auto", help="auto (cuda when present, bf16 autocast), cpu, cuda or cuda:N (default auto)"
    )


def _add_guidance_options(parser, defaults):
    guidance = parser.add_argument_group("guidance (optional)")
    guidance.add_argument(
        "--guide",
        metavar="CKPT",
        help="a fine-tuned SequenceClassification or SequenceRegression checkpoint "
        "(`dnafm fit` writes it as best/) that steers the samples",
    )
    guidance.add_argument(
        "--target", metavar="CLASS|VALUE", help="with --guide: the class id to make likely, or the value to approach"
    )
    guidance.add_argument(
        "--guide-candidates",
        type=int,
        default=defaults.guide_candidates,
        help=f"proposals the guide scores per step; the best is kept (default {defaults.guide_candidates})",
    )


def run(args) -> int:
    import sys

    import torch

    from dnafm_lib.core.devices import resolve_device
    from dnafm_lib.inference import generate as g

    # Everything a user can get wrong is checked before any weights load or any file is written.
    settings = _sampler_settings(args)
    _check_args(args)
    template = _checked_template(args)

    device = resolve_device(args.device)
    guide = g.load_guide(args.guide, args.target, device) if args.guide is not None else None
    model = g.load_generator_model(args.model, device)
    torch.manual_seed(settings.seed)  # nothing here draws from the global stream; this pins it anyway
    samples = g.generate(
        model, template, args.n_samples, settings, guide, progress=args.n_samples > settings.batch_size
    )
    tsv = args.tsv or g.default_tsv_path(args.out)
    g.write_outputs(samples, args.out, tsv, settings, template, str(args.model), guide)
    print(
        f"generate: {len(samples)} sample(s), {template.n_fill:,} of {len(template):,} nt generated each "
        f"→ {args.out}, {tsv}",
        file=sys.stderr,
    )
    return 0


def _sampler_settings(args):
    from dnafm_lib.core.settings import Layer
    from dnafm_lib.inference.generate import SamplerSettings

    names = ("steps", "schedule", "temperature", "top_k", "top_p", "seed", "batch_size", "guide_candidates")
    return SamplerSettings.load(Layer({name: getattr(args, name) for name in names}, SamplerSettings.ORIGIN))


def _check_args(args):
    """Flag combinations argparse cannot express."""
    from dnafm_lib.core.errors import DnafmError

    if args.n_samples < 1:
        raise DnafmError(f"--n-samples must be at least 1, got {args.n_samples}")
    if (args.guide is None) != (args.target is None):
        raise DnafmError("--guide and --target go together: the checkpoint that scores and what it should score")
    if args.region is not None and args.fasta is None:
        raise DnafmError("--region needs --fasta (the genome it is in)")
    if args.fasta is not None and args.region is None:
        raise DnafmError("--fasta needs --region chrom:start-end (the part to in-paint)")
    if args.mask_region and args.length is not None:
        raise DnafmError("--mask-region needs --template or --fasta/--region (with --length every base is generated)")


def _checked_template(args):
    """The sequence to fill, checked to have something to fill and to fit the model's (and guide's) context."""
    from dnafm_lib.core.errors import DnafmError
    from dnafm_lib.inference import generate as g
    from dnafm_lib.model.trained_context import warn_if_longer

    if args.length is not None:
        template, what = g.unconditional_template(args.length), f"--length {args.length}"
    elif args.template is not None:
        template, what = g.template_from_string(args.template), "--template"
    else:
        template, what = g.template_from_region(args.fasta, args.region), f"--region {args.region}"
    template = g.mask_spans(template, args.mask_region, args.region)
    if template.n_fill == 0:
        raise DnafmError(f"{what}: nothing to fill (no N bases; mark positions with N or --mask-region)")
    g.check_context(len(template), g.context_tokens(args.model), what, f"--model {args.model}")
    warn_if_longer(args.model, len(template))  # fits the positions, but longer than it was pretrained on
    if args.guide is not None:
        g.check_context(len(template), g.context_tokens(args.guide), what, f"--guide {args.guide}")
    return template
