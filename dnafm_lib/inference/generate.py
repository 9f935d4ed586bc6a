"""Directed sequence generation with the masked-LM encoder (masked diffusion, MaskGIT-style).

An encoder generates by iterative unmasking: start from a sequence whose positions to fill are
[MASK], predict every masked position, commit the most confident ones, repeat. A schedule sets
how many stay masked after step t of T: cosine ``M·cos(π/2·t/T)`` (few commits early, when the
context is thin) or linear ``M·(1 − t/T)``; every step commits at least one base and the last
commits the rest.

At each step and masked position a base is drawn from the model's distribution over A/C/G/T only
(never a special token or N), shaped by ``temperature`` (0 = argmax), ``top_k`` and ``top_p``.
A position's confidence is the log-probability of its most likely base plus Gumbel noise scaled
by ``temperature · (1 − t/T)`` (MaskGIT's annealed choice noise: early commits vary between
samples, late ones follow the model); the draws at the ``n`` most confident positions are
committed. Which positions commit does not depend on the bases drawn there, so each committed
base is a draw from the model's conditional given the bases committed before it.

Guidance (optional): each step draws ``guide_candidates`` independent proposals; each proposal is
completed (its draws at every masked position, not only the committed ones) and scored by a
fine-tuned SequenceClassification (probability of the target class) or SequenceRegression
(closeness to the target value) checkpoint; the best proposal's commits are kept.

Randomness: sample ``i`` draws from its own generator seeded from ``(seed, i)``, on the CPU, so
the same seed gives the same sequences on CPU whatever the batch size splits, and sample ``i``
does not depend on how many others are drawn.

Reported per sample: the mean over generated bases of ``log p(base)`` under the model's own
A/C/G/T distribution (temperature 1) at the step the base was committed (the sampler's
trajectory likelihood, in nats), the GC content, and the guide's score of the final sequence.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import torch

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.core.settings import Origin, Settings
from dnafm_lib.inference.masked import acgt_logits, autocast, forward
from dnafm_lib.model.tokenizer import ACGT_IDS, MASK_ID, TOKEN_ID, encode, frame
from dnafm_lib.model.trained_context import FRAME_TOKENS

SCHEDULES = ("cosine", "linear")
BASES = "ACGT"
FASTA_LINE_WIDTH = 80
GUIDE_TASKS = ("SequenceClassification", "SequenceRegression")


class GenerateError(DnafmError):
    """A generation request that cannot be served (bad template, region, setting or checkpoint)."""


@dataclass
class SamplerSettings(Settings):
    """How bases are drawn and committed; the CLI's defaults and help come from here."""

    # named as the `dnafm generate` flags (--top-k), from Python too
    ORIGIN: ClassVar[Origin] = Origin(prefix="--", dashes=True)

    steps: int = 32  # unmasking steps (at most one per base to fill)
    schedule: str = "cosine"  # cosine or linear: how many stay masked after each step
    temperature: float = 1.0  # softmax temperature over A/C/G/T; 0 = always the most likely base
    top_k: int = 0  # draw among the k most likely bases (1-4); 0 = all four
    top_p: float = 1.0  # draw among the most likely bases whose probability sums to p (nucleus)
    seed: int = 0  # sample i draws from a generator seeded by (seed, i)
    batch_size: int = 16  # samples per forward pass
    guide_candidates: int = 4  # proposals scored by the guide per step (with a guide only)

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.steps < 1:
            yield "steps", f"must be at least 1, got {self.steps}"
        if self.schedule not in SCHEDULES:
            yield "schedule", f"must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            yield "temperature", f"must be a finite number >= 0, got {self.temperature}"
        if not 0 <= self.top_k <= len(BASES):
            yield "top_k", f"must be 0 (off) or 1-4 (there are four bases), got {self.top_k}"
        if not 0 < self.top_p <= 1:
            yield "top_p", f"must be in (0, 1], got {self.top_p}"
        if self.batch_size < 1:
            yield "batch_size", f"must be at least 1, got {self.batch_size}"
        if self.guide_candidates < 1:
            yield "guide_candidates", f"must be at least 1, got {self.guide_candidates}"


# ---------------------------------------------------------------------- what to fill


@dataclass
class Template:
    """The sequence to complete: kept bases (exactly as given, case included) and positions to fill."""

    text: str  # the kept bases; filled positions hold a placeholder
    fill: np.ndarray  # bool (length,): True where a base is generated
    description: dict[str, str] = field(default_factory=dict)  # for the FASTA header

    def __len__(self) -> int:
        return len(self.text)

    @property
    def n_fill(self) -> int:
        return int(self.fill.sum())


def unconditional_template(length: int) -> Template:
    if length < 1:
        raise GenerateError(f"--length must be at least 1, got {length}")
    return Template("N" * length, np.ones(length, dtype=bool), {"length": str(length)})


_TEMPLATE_ALLOWED = re.compile(r"[^ACGTNacgtn]")


def template_from_string(text: str, where: str = "--template") -> Template:
    """A/C/G/T (either case) are kept; N marks a position to fill; anything else is an error."""
    text = "".join(text.split())  # a template pasted across lines
    if not text:
        raise GenerateError(f"{where}: empty template")
    bad = _TEMPLATE_ALLOWED.search(text)
    if bad:
        char = bad.group()
        shown = repr(char) if char.isprintable() else f"code point U+{ord(char):04X}"
        raise GenerateError(
            f"{where}: offset {bad.start()}: unexpected character {shown} "
            "(use A, C, G, T for bases to keep and N for positions to fill)"
        )
    fill = np.frombuffer(text.upper().encode("ascii"), dtype=np.uint8) == ord("N")
    return Template(text, fill.copy(), {"template_nt": str(len(text))})


@dataclass(frozen=True)
class Span:
    """A 1-based, inclusive interval, as samtools and genome browsers write them."""

    chrom: str | None
    start: int
    end: int

    def __str__(self) -> str:
        prefix = f"{self.chrom}:" if self.chrom is not None else ""
        return f"{prefix}{self.start}-{self.end}"


_SPAN = re.compile(r"^(?:(?P<chrom>.+):)?(?P<start>[\d,]+)-(?P<end>[\d,]+)$")


def parse_span(text: str, option: str) -> Span:
    """``chr:start-end`` or ``start-end`` (1-based, inclusive; thousands separators allowed)."""
    match = _SPAN.match(text.strip())
    if not match:
        raise GenerateError(f"{option} {text!r}: expected chrom:start-end (1-based, inclusive), e.g. chr1:1001-1200")
    start, end = (int(match.group(k).replace(",", "")) for k in ("start", "end"))
    if start < 1 or end < start:
        raise GenerateError(f"{option} {text!r}: start must be >= 1 and end >= start")
    return Span(match.group("chrom"), start, end)


def template_from_region(fasta_path: str | os.PathLike, region: str, where: str = "--region") -> Template:
    """The bases of ``region`` from a FASTA (plain, gzip or bgzip); N and other ambiguity codes are filled."""
    from dnafm_lib.data.indexed_fasta import ensure_indexed, open_fasta

    span = parse_span(region, where)
    if span.chrom is None:
        raise GenerateError(f"{where} {region!r}: name the contig, as chrom:start-end")
    fasta = open_fasta(ensure_indexed(fasta_path))
    if span.chrom not in fasta.records:
        names = list(fasta.records)
        shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
        raise GenerateError(f"{where} {region}: contig {span.chrom!r} is not in {fasta_path} (contigs: {shown})")
    contig_length = len(fasta.records[span.chrom])
    if span.end > contig_length:
        raise GenerateError(f"{where} {region}: outside {span.chrom} (length {contig_length:,} bp) in {fasta_path}")
    text = str(fasta[span.chrom][span.start - 1 : span.end])
    codes = np.frombuffer(text.upper().encode("ascii", errors="replace"), dtype=np.uint8)
    fill = ~np.isin(codes, np.frombuffer(BASES.encode(), dtype=np.uint8))
    return Template(text, fill, {"region": str(span)})


def mask_spans(template: Template, spans: Sequence[str], region: str | None = None) -> Template:
    """Also fill the ``--mask-region`` spans: template positions, or genome coordinates inside ``region``."""
    if not spans:
        return template
    origin = parse_span(region, "--region") if region else None
    fill = template.fill.copy()
    for text in spans:
        span = parse_span(text, "--mask-region")
        if origin is None:
            if span.chrom is not None:
                raise GenerateError(f"--mask-region {text}: with --template give positions in it as start-end")
            first, last = span.start, span.end
            if last > len(template):
                raise GenerateError(f"--mask-region {text}: past the end of the template ({len(template)} nt)")
        else:
            if span.chrom is not None and span.chrom != origin.chrom:
                raise GenerateError(f"--mask-region {text}: not on the --region contig {origin.chrom!r}")
            if span.start < origin.start or span.end > origin.end:
                raise GenerateError(f"--mask-region {text}: outside --region {origin}")
            first, last = span.start - origin.start + 1, span.end - origin.start + 1
        fill[first - 1 : last] = True
    description = dict(template.description, mask_region=",".join(spans))
    return Template(template.text, fill, description)


# ---------------------------------------------------------------------- the model's context


def context_tokens(path_or_preset: str | os.PathLike) -> int:
    """The longest input (tokens, framing included) of a preset or checkpoint, read without loading weights."""
    from dnafm_lib.model.encoder import PRESETS
    from dnafm_lib.model.model_dir import CONFIG_NAME, config_from_json

    name = str(path_or_preset)
    directory = Path(name)
    if name in PRESETS and not directory.is_dir():
        return PRESETS[name].max_position_embeddings
    if (directory / "task.json").is_file():
        task = _read_json(directory / "task.json")
        return int(task.get("architecture", {}).get("max_position_embeddings", 0)) or sys.maxsize
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        return sys.maxsize  # load_model names what is wrong with it
    return config_from_json(_read_json(config_path), str(config_path)).max_position_embeddings


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GenerateError(f"{path}: cannot read ({exc})") from None
    if not isinstance(data, dict):
        raise GenerateError(f"{path}: expected a JSON object")
    return data


def check_context(n_bases: int, limit_tokens: int, what: str, model_name: str) -> None:
    if n_bases + FRAME_TOKENS > limit_tokens:
        raise GenerateError(
            f"{what}: {n_bases:,} nt + [CLS]/[EOS] = {n_bases + FRAME_TOKENS:,} tokens exceeds the context of "
            f"{model_name} ({limit_tokens:,} tokens); at most {limit_tokens - FRAME_TOKENS:,} nt"
        )


def load_generator_model(path_or_preset: str | os.PathLike, device: torch.device) -> torch.nn.Module:
    """The masked-LM model (preset or AIDO.DNA-layout directory); a task checkpoint is a clear error."""
    from dnafm_lib import load_model

    directory = Path(path_or_preset)
    if (directory / "task.json").is_file():
        task = _read_json(directory / "task.json").get("task", "a task model")
        raise GenerateError(
            f"--model {path_or_preset}: a fine-tuned {task} checkpoint has no masked-LM head; "
            "generate with a pretrained model and pass this one as --guide"
        )
    return load_model(path_or_preset).to(device).eval()


# ---------------------------------------------------------------------- guidance


@dataclass
class Guide:
    """A fine-tuned sequence model that steers generation toward ``target``."""

    model: torch.nn.Module
    target: float
    kind: str  # "classification" or "regression"
    path: str

    @torch.no_grad()
    def values(self, input_ids: torch.Tensor, batch_size: int) -> torch.Tensor:
        """What the TSV reports, per sequence: p(target class), or the predicted value (CPU float64)."""
        self.model.eval()
        device = next(self.model.parameters()).device
        out = []
        for first in range(0, input_ids.shape[0], batch_size):
            ids = input_ids[first : first + batch_size].to(device)
            collated = {"input_ids": ids, "attention_mask": torch.ones_like(ids, dtype=torch.bool)}
            with autocast(device):
                raw = self.model(collated).float()
            if self.kind == "classification":
                out.append(raw.softmax(dim=-1)[:, int(self.target)])
            else:
                out.append(raw[:, 0])
        return torch.cat(out).double().cpu()

    def preference(self, values: torch.Tensor) -> torch.Tensor:
        """Higher is better: the probability itself, or minus the distance to the target value."""
        return values if self.kind == "classification" else -(values - self.target).abs()


def load_guide(path: str | os.PathLike, target: str, device: torch.device) -> Guide:
    """A SequenceClassification / SequenceRegression checkpoint written by `dnafm fit`, and its target."""
    from dnafm_lib.finetune.models import load_task

    meta_path = Path(path) / "task.json"
    if not meta_path.is_file():
        raise GenerateError(f"--guide {path}: not a fine-tuned checkpoint (no task.json; `dnafm fit` writes best/)")
    meta = _read_json(meta_path)
    task = meta.get("task")
    if task not in GUIDE_TASKS:
        raise GenerateError(
            f"--guide {path}: a {task} checkpoint cannot score sequences; use {' or '.join(GUIDE_TASKS)}"
        )
    model_options = meta.get("model", {})
    if task == "SequenceClassification":
        n_classes = int(model_options.get("n_classes", 2))
        try:
            value = int(target)
        except ValueError:
            raise GenerateError(
                f"--target {target!r}: a class id (0-{n_classes - 1}) for the classifier {path}"
            ) from None
        if not 0 <= value < n_classes:
            raise GenerateError(f"--target {target}: the classifier {path} has classes 0-{n_classes - 1}")
        kind = "classification"
    else:
        if int(model_options.get("n_outputs", 1)) != 1:
            raise GenerateError(
                f"--guide {path}: a regression guide must have one output, it has {model_options['n_outputs']}"
            )
        try:
            value = float(target)
        except ValueError:
            raise GenerateError(f"--target {target!r}: a number for the regression guide {path}") from None
        if not math.isfinite(value):
            raise GenerateError(f"--target {target}: must be finite")
        kind = "regression"
    model = load_task(path).to(device).eval()
    return Guide(model, float(value), kind, str(path))


# ---------------------------------------------------------------------- the sampler


def committed_after_each_step(n_fill: int, steps: int, schedule: str) -> list[int]:
    """Cumulative number of committed bases after each step: strictly increasing, ending at n_fill."""
    counts, previous = [], 0
    for step in range(1, steps + 1):
        ratio = step / steps
        still_masked = math.cos(math.pi / 2 * ratio) if schedule == "cosine" else 1.0 - ratio
        committed = n_fill - math.floor(n_fill * still_masked + 1e-9) if step < steps else n_fill
        committed = min(n_fill, max(committed, previous + 1))
        counts.append(committed)
        previous = committed
        if committed == n_fill:
            break
    return counts


def sample_generator(seed: int, index: int) -> torch.Generator:
    """Sample ``index``'s own random stream: independent of batching and of the other samples."""
    state = np.random.SeedSequence([seed & 0xFFFFFFFF, seed >> 32 & 0xFFFFFFFF, index]).generate_state(2)
    generator = torch.Generator(device="cpu")
    generator.manual_seed(int(state[0]) << 32 | int(state[1]))
    return generator


def filtered_log_probs(logits: torch.Tensor, settings: SamplerSettings) -> torch.Tensor:
    """Log-probabilities to draw from, over the last axis (the four bases), after temperature/top-k/top-p."""
    if settings.temperature == 0:
        return logits.log_softmax(dim=-1)  # argmax is taken from these; nothing is drawn
    scaled = logits / settings.temperature
    if settings.top_k:
        kth = scaled.topk(settings.top_k, dim=-1).values[..., -1:]
        scaled = scaled.masked_fill(scaled < kth, -math.inf)
    if settings.top_p < 1:
        probs = scaled.softmax(dim=-1)
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
        drop_sorted = mass_before >= settings.top_p  # the most likely base always stays
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        scaled = scaled.masked_fill(drop, -math.inf)
    return scaled.log_softmax(dim=-1)


@dataclass
class GeneratedSample:
    index: int  # 0-based over the whole request
    sequence: str
    generated: np.ndarray  # bool (length,)
    mean_log_likelihood: float  # nats per generated base
    guide_value: float | None = None

    @property
    def gc_content(self) -> float:
        return _gc(self.sequence)

    @property
    def gc_content_generated(self) -> float:
        chosen = np.frombuffer(self.sequence.encode("ascii"), dtype=np.uint8)[self.generated]
        return _gc(chosen.tobytes().decode("ascii"))


def _gc(sequence: str) -> float:
    upper = sequence.upper()
    called = sum(upper.count(b) for b in BASES)
    return (upper.count("G") + upper.count("C")) / called if called else float("nan")


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    template: Template,
    n_samples: int,
    settings: SamplerSettings,
    guide: Guide | None = None,
    progress: bool = False,
) -> list[GeneratedSample]:
    """``n_samples`` completions of ``template`` (its kept bases untouched) by iterative unmasking."""
    settings.validate()
    if n_samples < 1:
        raise GenerateError(f"--n-samples must be at least 1, got {n_samples}")
    if template.n_fill == 0:
        raise GenerateError("nothing to fill: the template has no N and no --mask-region")
    model.eval()
    samples: list[GeneratedSample] = []
    for first in range(0, n_samples, settings.batch_size):
        indices = list(range(first, min(first + settings.batch_size, n_samples)))
        samples += _generate_batch(model, template, indices, settings, guide)
        if progress:
            print(f"generate: {len(samples)}/{n_samples} samples", file=sys.stderr)
    return samples


def _generate_batch(
    model, template: Template, indices: list[int], settings: SamplerSettings, guide: Guide | None
) -> list[GeneratedSample]:
    device = next(model.parameters()).device
    batch, width = len(indices), len(template) + FRAME_TOKENS
    acgt = torch.tensor(ACGT_IDS, dtype=torch.long)
    fill = torch.zeros(width, dtype=torch.bool)
    fill[1:-1] = torch.from_numpy(template.fill)
    row = torch.from_numpy(frame(encode(template.text.upper(), where="template")))  # [CLS] bases [EOS]
    row[fill] = MASK_ID

    ids = row.repeat(batch, 1)  # (B, W), kept on the CPU; each step copies it to the device
    masked = fill.repeat(batch, 1)
    log_likelihood = torch.zeros(batch, width, dtype=torch.float64)
    generators = [sample_generator(settings.seed, i) for i in indices]
    candidates = settings.guide_candidates if guide is not None else 1
    schedule = committed_after_each_step(template.n_fill, settings.steps, settings.schedule)
    committed_so_far = 0
    rows = torch.arange(batch)

    for step, committed in enumerate(schedule, start=1):
        n_commit = committed - committed_so_far
        committed_so_far = committed
        logits = acgt_logits(forward(model, ids.to(device)).logits).cpu()  # (B, W, 4): only A/C/G/T can be drawn
        model_log_probs = logits.log_softmax(dim=-1)
        draw_log_probs = filtered_log_probs(logits, settings)

        # Per sample, from its own generator: uniforms for the base draw and for the choice noise.
        uniforms = torch.stack(
            [torch.rand((candidates, 2, width), generator=g, dtype=torch.float64) for g in generators]
        ).clamp(min=1e-12)  # (B, C, 2, W)
        choice = _draw_bases(draw_log_probs, uniforms, settings.temperature)
        noise_scale = settings.temperature * (1.0 - step / len(schedule))
        chosen_positions = _commit_positions(draw_log_probs, uniforms, masked, noise_scale, n_commit)
        best = _best_candidates(guide, choice, masked, ids, acgt, settings.batch_size)

        positions = chosen_positions[rows, best]  # (B, n_commit)
        bases = choice[rows, best].gather(1, positions)
        ids[rows[:, None], positions] = acgt[bases]
        log_likelihood[rows[:, None], positions] = (
            model_log_probs.gather(-1, choice[rows, best].unsqueeze(-1)).squeeze(-1).double().gather(1, positions)
        )
        masked[rows[:, None], positions] = False

    if masked.any():  # the schedule commits every position; this guards the invariant
        raise AssertionError("positions left masked after the last step")
    guide_values = guide.values(ids, settings.batch_size) if guide is not None else None
    return _samples_from_ids(template, indices, ids, fill, log_likelihood, guide_values)


def _draw_bases(draw_log_probs: torch.Tensor, uniforms: torch.Tensor, temperature: float) -> torch.Tensor:
    """Each candidate's base at every position (B, C, W) from the (B, W, 4) log-probabilities:
    the most likely at temperature 0, else an inverse-CDF draw with ``uniforms[:, :, 0]``."""
    batch, candidates, _, width = uniforms.shape
    if temperature == 0:
        return draw_log_probs.argmax(dim=-1).unsqueeze(1).expand(batch, candidates, width)
    # Inverse CDF, normalised so its last entry is exactly 1 (> any uniform in [0, 1)); a
    # base cut by top-k/top-p adds no mass, so no uniform can land on it.
    cdf = draw_log_probs.double().exp().cumsum(dim=-1)
    cdf = (cdf / cdf[..., -1:]).unsqueeze(1)  # (B, 1, W, 4)
    return (uniforms[:, :, 0, :, None] > cdf).sum(dim=-1)


def _commit_positions(
    draw_log_probs: torch.Tensor, uniforms: torch.Tensor, masked: torch.Tensor, noise_scale: float, n_commit: int
) -> torch.Tensor:
    """The ``n_commit`` still-masked positions each candidate commits this step (B, C, n_commit):
    the most confident, with Gumbel noise from ``uniforms[:, :, 1]`` scaled by ``noise_scale``."""
    batch, candidates, _, width = uniforms.shape
    # A position's confidence is how sure the model is there (its most likely base), not the
    # probability of the base drawn: ranking by the draw would commit frequent bases first
    # and drift every sample toward them (measured: 3-10% GC from the demo model).
    confidence = draw_log_probs.max(dim=-1).values.unsqueeze(1).expand(batch, candidates, width)
    if noise_scale > 0:
        gumbel = -torch.log(-torch.log(uniforms[:, :, 1])).float()
        confidence = confidence + noise_scale * gumbel
    confidence = confidence.masked_fill(~masked.unsqueeze(1), -math.inf)
    return confidence.topk(n_commit, dim=-1).indices


def _best_candidates(
    guide: Guide | None,
    choice: torch.Tensor,
    masked: torch.Tensor,
    ids: torch.Tensor,
    acgt: torch.Tensor,
    batch_size: int,
) -> torch.Tensor:
    """Per sample, the index of the candidate the guide prefers (all 0 without a guide or with one candidate)."""
    batch, candidates, width = choice.shape
    best = torch.zeros(batch, dtype=torch.long)
    if guide is not None and candidates > 1:
        # Score each proposal completed: its draws at every masked position.
        proposals = torch.where(masked.unsqueeze(1), acgt[choice], ids.unsqueeze(1))  # (B, C, W)
        values = guide.values(proposals.reshape(batch * candidates, width), batch_size)
        best = guide.preference(values).reshape(batch, candidates).argmax(dim=1)
    return best


def _samples_from_ids(
    template: Template,
    indices: list[int],
    ids: torch.Tensor,
    fill: torch.Tensor,
    log_likelihood: torch.Tensor,
    guide_values,
) -> list[GeneratedSample]:
    """The finished token rows as samples: kept template text with the drawn bases filled in."""
    samples = []
    kept_text = np.frombuffer(template.text.encode("ascii", errors="replace"), dtype=np.uint8)
    id_to_char = np.zeros(len(TOKEN_ID), dtype=np.uint8)
    for base in BASES:
        id_to_char[TOKEN_ID[base]] = ord(base)
    for k, index in enumerate(indices):
        out = kept_text.copy()
        drawn = ids[k, 1:-1].numpy()
        out[template.fill] = id_to_char[drawn[template.fill]]
        samples.append(
            GeneratedSample(
                index=index,
                sequence=out.tobytes().decode("ascii"),
                generated=template.fill.copy(),
                mean_log_likelihood=float(log_likelihood[k, fill].mean()),
                guide_value=None if guide_values is None else float(guide_values[k]),
            )
        )
    return samples


# ---------------------------------------------------------------------- outputs


def _header_value(value) -> str:
    text = str(value)
    return re.sub(r"\s", "_", text)  # keep each key=value one whitespace-free token


def fasta_header(
    sample: GeneratedSample, settings: SamplerSettings, template: Template, model_name: str, guide: Guide | None
) -> str:
    fields = {
        "model": model_name,
        **template.description,
        "generated_nt": int(sample.generated.sum()),
        "steps": settings.steps,
        "schedule": settings.schedule,
        "temperature": settings.temperature,
        "top_k": settings.top_k,
        "top_p": settings.top_p,
        "seed": settings.seed,
    }
    if guide is not None:
        fields.update(guide=guide.path, target=_format_target(guide), guide_candidates=settings.guide_candidates)
    return f"sample_{sample.index + 1} " + " ".join(f"{k}={_header_value(v)}" for k, v in fields.items())


def _format_target(guide: Guide) -> str:
    return str(int(guide.target)) if guide.kind == "classification" else f"{guide.target:g}"


def write_outputs(
    samples: list[GeneratedSample],
    fasta_path: str | os.PathLike,
    tsv_path: str | os.PathLike,
    settings: SamplerSettings,
    template: Template,
    model_name: str,
    guide: Guide | None,
) -> None:
    """The FASTA (settings in each header) and the per-sample TSV, each written whole or not at all."""
    from dnafm_lib.core.atomic import atomic_open

    with atomic_open(tsv_path) as tsv, atomic_open(fasta_path) as fasta:
        for sample in samples:
            fasta.write(f">{fasta_header(sample, settings, template, model_name, guide)}\n")
            for start in range(0, len(sample.sequence), FASTA_LINE_WIDTH):
                fasta.write(sample.sequence[start : start + FASTA_LINE_WIDTH] + "\n")
        columns = ["sample", "length", "generated_nt", "mean_log_likelihood_nats", "gc_content", "gc_content_generated"]
        if guide is not None:
            columns.append("guide_p_target" if guide.kind == "classification" else "guide_prediction")
        tsv.write("\t".join(columns) + "\n")
        for sample in samples:
            values = [
                f"sample_{sample.index + 1}",
                str(len(sample.sequence)),
                str(int(sample.generated.sum())),
                f"{sample.mean_log_likelihood:.6g}",
                f"{sample.gc_content:.6g}",
                f"{sample.gc_content_generated:.6g}",
            ]
            if guide is not None:
                values.append(f"{sample.guide_value:.6g}")
            tsv.write("\t".join(values) + "\n")


def default_tsv_path(fasta_path: str | os.PathLike) -> Path:
    """samples.fa → samples.tsv (any .fa/.fasta/.fna suffix is replaced)."""
    path = Path(fasta_path)
    if path.suffix.lower() in (".fa", ".fasta", ".fna"):
        return path.with_suffix(".tsv")
    return path.with_name(path.name + ".tsv")
