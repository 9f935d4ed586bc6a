"""Per-base masked-LM scores and binned embeddings for the windows of a chunk.

Every window is run ``passes`` times; the passes mask complementary sets of its non-N bases
(each base in exactly one pass, ``1/passes`` of them per pass: 7 passes ≈ 14% like training),
and each base takes the prediction of the pass that masked it. The four probabilities are
renormalised over A/C/G/T; loss = −log p(true base) and entropy = −Σ p log p, both in nats,
come from those four numbers, so the loss track is −log of the probability track of the
reference base. With reverse-complement averaging each window is also scored as its reverse
complement with the mirrored masks, and the two strands' probabilities are averaged before
loss and entropy. Embeddings come from one extra, unmasked pass (forward strand): the hidden
states of a chosen layer, summed per bin here and averaged when the chunk is written.

With ``masking: exact`` (single-site scoring, as GPN and DNALLM score) ``passes`` is not used:
each kept base is masked alone in its window, one forward per base and strand, batched as many
copies of the window that each carry one mask. It costs ``window_bp`` tokens per base and strand
instead of ``passes × window_bp / stride_bp``; benchmarks/science.py measures what that buys.

Masks depend only on (seed, contig, window start), never on the chunk or the batch, so a
chunked run scores every base exactly as an unchunked one does.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable, ClassVar, Iterator, Sequence

import numpy as np

from dnafm_lib.core.progress import Progress
from dnafm_lib.core.settings import Settings
from dnafm_lib.inference.tracks.tiling import WINDOW_BP, Region, Window, windows_for_region
from dnafm_lib.model.tokenizer import ACGT_IDS, MASK_ID, N_ID, PAD_ID, encode, frame

#: how a window's bases are masked: complementary pass sets, or each base alone
MASKING = ("passes", "exact")

#: token id → index in A, C, G, T order (−1 for N and everything else)
ACGT_INDEX = np.full(256, -1, dtype=np.int64)
ACGT_INDEX[list(ACGT_IDS)] = np.arange(4)
#: token id of each base's complement (N stays N)
COMPLEMENT_ID = np.arange(256, dtype=np.uint8)
for _base, _comp in zip(ACGT_IDS, ACGT_IDS[::-1]):
    COMPLEMENT_ID[_base] = _comp

FetchSequence = Callable[[str, int, int], str]


@dataclass(frozen=True)
class ScoringSettings(Settings):
    """How windows are scored; part of what makes two runs comparable."""

    SECTION: ClassVar[str] = "tracks"

    window_bp: int = WINDOW_BP
    stride_bp: int = WINDOW_BP // 2
    passes: int = 7
    #: "passes" (each base masked with 1/passes of its window) or "exact" (each base alone)
    masking: str = "passes"
    reverse_complement: bool = False
    #: index into the model's hidden states (0 = embeddings, n_layers = final normed output;
    #: negative counts from the end); None = no embeddings
    embedding_layer: int | None = -1
    bin_bp: int = 100
    batch_size: int = 8
    seed: int = 0

    def problems(self) -> Iterator[tuple[str, str]]:
        # the window geometry tiling.check_geometry guards for the library's own callers
        if not 1 <= self.window_bp <= WINDOW_BP:
            yield "window_bp", f"must be between 1 and {WINDOW_BP}, got {self.window_bp}"
        elif not 1 <= self.stride_bp <= self.window_bp:
            yield "stride_bp", f"must be between 1 and window_bp ({self.window_bp}), got {self.stride_bp}"
        if self.masking not in MASKING:
            yield "masking", f"must be one of {', '.join(MASKING)}, got {self.masking!r}"
        for key in ("passes", "batch_size", "bin_bp"):
            if getattr(self, key) < 1:
                yield key, f"must be at least 1, got {getattr(self, key)}"


@dataclass
class RegionScores:
    """Per-base scores of one region (NaN where the base is N) and its embedding bin sums."""

    region: Region
    bin_bp: int
    probs: np.ndarray  # (n, 4) float32, A/C/G/T
    loss_nats: np.ndarray  # (n,) float32
    entropy_nats: np.ndarray  # (n,) float32
    bin_sums: np.ndarray | None  # (n_bins, H) float64
    bin_counts: np.ndarray | None  # (n_bins,) int64: non-N bases per bin


def mask_pass_of_position(token_ids: np.ndarray, passes: int, seed: int, contig: str, start: int) -> np.ndarray:
    """Pass (0..passes-1) in which each position is masked; −1 for N (never masked).

    Each non-N base gets exactly one pass and the passes differ in size by at most one base.
    """
    scored = np.flatnonzero(token_ids != N_ID)
    rng = np.random.default_rng([seed, zlib.crc32(contig.encode()), start])
    pass_of = np.full(token_ids.size, -1, dtype=np.int64)
    pass_of[scored] = rng.permutation(np.arange(scored.size) % passes)
    return pass_of


@dataclass
class _Job:
    region_index: int
    window: Window
    input_ids: np.ndarray  # framed tokens, (L + 2,)
    # For a masked pass: window offsets (0-based, unframed) whose prediction is read out.
    read_offsets: np.ndarray | None = None
    reverse: bool = False
    embedding: bool = False


class WindowScorer:
    """Runs a model over windows in batches and fills per-base arrays.

    The forward pass and the MLM head run through ``inference.masked`` (bf16 autocast on CUDA,
    float32 on the CPU).
    """

    def __init__(self, model, settings: ScoringSettings, device="cpu"):
        import torch  # here, not at import: planning and gathering never need torch

        self.model = model.eval()
        self.settings = settings
        self.device = torch.device(device)
        n_layers = len(model.blocks)
        layer = settings.embedding_layer
        if layer is not None:
            layer = layer + n_layers + 1 if layer < 0 else layer
            if not 0 <= layer <= n_layers:
                raise ValueError(
                    f"embedding layer {settings.embedding_layer} is outside 0..{n_layers} (or -{n_layers + 1}..-1)"
                )
        self.embedding_layer = layer
        self.hidden_size = model.config.hidden_size

    # ------------------------------------------------------------------ public

    def score_regions(
        self, regions: Sequence[Region], fetch: FetchSequence, contig_lengths: dict[str, int]
    ) -> list[RegionScores]:
        """Score every base of ``regions`` (each base once; N bases stay NaN)."""
        s = self.settings
        out = []
        for region in regions:
            n = region.length
            want_bins = self.embedding_layer is not None
            n_bins = -(-n // s.bin_bp)
            scores = RegionScores(
                region=region,
                bin_bp=s.bin_bp,
                probs=np.full((n, 4), np.nan, dtype=np.float32),
                loss_nats=np.full(n, np.nan, dtype=np.float32),
                entropy_nats=np.full(n, np.nan, dtype=np.float32),
                bin_sums=np.zeros((n_bins, self.hidden_size), dtype=np.float64) if want_bins else None,
                bin_counts=np.zeros(n_bins, dtype=np.int64) if want_bins else None,
            )
            out.append(scores)
        jobs = self._jobs(regions, fetch, contig_lengths)
        prob_sums = [np.zeros((r.length, 4), dtype=np.float32) for r in regions]
        bases_before = np.cumsum([0] + [r.length for r in regions])  # of each region, in scoring order
        progress = Progress("scoring", int(bases_before[-1]), unit="bases")
        for batch in _batched(jobs, s.batch_size):
            self._run_batch(batch, out, prob_sums)
            last = batch[-1]  # the bases before its window's kept span are done
            progress.update(
                int(bases_before[last.region_index]) + last.window.keep_start - regions[last.region_index].start
            )
        progress.finish()
        strands = 2 if s.reverse_complement else 1
        for scores, summed in zip(out, prob_sums):
            self._finish(scores, summed / strands, fetch)
        return out

    # ------------------------------------------------------------------ internals

    def _jobs(self, regions: Sequence[Region], fetch: FetchSequence, contig_lengths: dict[str, int]) -> Iterator[_Job]:
        s = self.settings
        for region_index, region in enumerate(regions):
            windows = windows_for_region(region, contig_lengths[region.contig], s.window_bp, s.stride_bp)
            if not windows:
                continue
            span_start, span_end = windows[0].start, max(w.end for w in windows)
            span = encode(fetch(region.contig, span_start, span_end), where=f"contig {region.contig!r}, ")
            for window in windows:
                ids = span[window.start - span_start : window.end - span_start]
                if not (ids != N_ID).any():
                    continue  # all N: nothing to score, nothing to embed
                keep = np.zeros(ids.size, dtype=bool)
                keep[window.keep_start - window.start : window.keep_end - window.start] = True
                for masked in self._masks(ids, keep, window):
                    read = np.flatnonzero(masked & keep)
                    if read.size == 0:
                        continue
                    forward = frame(np.where(masked, MASK_ID, ids))
                    yield _Job(region_index, window, forward, read_offsets=read)
                    if s.reverse_complement:
                        reverse = frame(np.where(masked, MASK_ID, COMPLEMENT_ID[ids])[::-1])
                        yield _Job(region_index, window, reverse, read_offsets=read, reverse=True)
                if self.embedding_layer is not None:
                    yield _Job(region_index, window, frame(ids), embedding=True)

    def _masks(self, ids: np.ndarray, keep: np.ndarray, window: Window) -> Iterator[np.ndarray]:
        """The masks of one window's forward passes (boolean over its offsets)."""
        s = self.settings
        if s.masking == "exact":
            for offset in np.flatnonzero(keep & (ids != N_ID)):
                masked = np.zeros(ids.size, dtype=bool)
                masked[offset] = True
                yield masked
            return
        pass_of = mask_pass_of_position(ids, s.passes, s.seed, window.contig, window.start)
        for pass_index in range(s.passes):
            yield pass_of == pass_index

    def _run_batch(self, batch: list[_Job], out: list[RegionScores], prob_sums: list[np.ndarray]) -> None:
        import torch

        with torch.inference_mode():
            self._forward_batch(batch, out, prob_sums)

    def _forward_batch(self, batch: list[_Job], out: list[RegionScores], prob_sums: list[np.ndarray]) -> None:
        import torch

        from dnafm_lib.inference import masked

        width = max(job.input_ids.size for job in batch)
        input_ids = np.full((len(batch), width), PAD_ID, dtype=np.int64)
        attention = np.zeros((len(batch), width), dtype=bool)
        for row, job in enumerate(batch):
            input_ids[row, : job.input_ids.size] = job.input_ids
            attention[row, : job.input_ids.size] = True
        ids_t = torch.from_numpy(input_ids).to(self.device, non_blocking=True)
        mask_t = None if attention.all() else torch.from_numpy(attention).to(self.device)
        captured: list[torch.Tensor] = []
        hook = None
        want_layer = any(job.embedding for job in batch) and self.embedding_layer < len(self.model.blocks)
        if want_layer:
            hook = self.model.blocks[self.embedding_layer].register_forward_pre_hook(
                lambda module, args: captured.append(args[0])
            )
        try:
            hidden = masked.forward(self.model, ids_t, mask_t, return_logits=False).last_hidden_state
            # The MLM head runs only at the positions read out (a few per window).
            rows, cols = [], []
            for row, job in enumerate(batch):
                if job.read_offsets is None:
                    continue
                offsets = job.read_offsets
                positions = (job.input_ids.size - 2 - 1 - offsets) if job.reverse else offsets
                rows.append(np.full(offsets.size, row))
                cols.append(positions + 1)  # +1 for [CLS]
            if rows:
                r = torch.from_numpy(np.concatenate(rows)).to(self.device)
                c = torch.from_numpy(np.concatenate(cols)).to(self.device)
                probs = torch.softmax(masked.head_logits_at(self.model, hidden, r, c), dim=-1).cpu().numpy()
        finally:
            if hook is not None:
                hook.remove()
        cursor = 0
        for job in batch:
            if job.read_offsets is None:
                continue
            n = job.read_offsets.size
            p = probs[cursor : cursor + n]
            cursor += n
            if job.reverse:
                p = p[:, ::-1]  # complement: A↔T, C↔G in A,C,G,T order
            base = job.window.start - out[job.region_index].region.start
            prob_sums[job.region_index][base + job.read_offsets] += p
        embed_rows = [row for row, job in enumerate(batch) if job.embedding]
        if embed_rows:
            layer_states = captured[0] if want_layer else hidden
            for row in embed_rows:
                self._add_embedding(batch[row], layer_states[row], out[batch[row].region_index])

    def _add_embedding(self, job: _Job, states, scores: RegionScores) -> None:
        window = job.window
        lo, hi = window.keep_start - window.start, window.keep_end - window.start
        tokens = job.input_ids[1 + lo : 1 + hi]
        valid = np.flatnonzero(tokens != N_ID)
        if valid.size == 0:
            return
        import torch

        bins = (window.keep_start - scores.region.start + valid) // self.settings.bin_bp  # non-decreasing
        first, n_bins = int(bins[0]), int(bins[-1] - bins[0]) + 1
        # Sum per bin on the model's device, so only (bins × hidden) crosses to the host: at the 7B
        # width a window's per-base states are 35 MB, and copying them out and np.add.at over them
        # cost more than the GPU forward passes (measured on an H100: scorer 2.4x the bare forward).
        rows = torch.from_numpy(valid).to(states.device)
        kept = states[1 + lo : 1 + hi].index_select(0, rows).float()
        sums = torch.zeros(n_bins, kept.shape[1], dtype=torch.float32, device=states.device)
        sums.index_add_(0, torch.from_numpy(bins - first).to(states.device), kept)
        scores.bin_sums[first : first + n_bins] += sums.cpu().numpy()
        scores.bin_counts[first : first + n_bins] += np.bincount(bins - first, minlength=n_bins)

    @staticmethod
    def _finish(scores: RegionScores, probs: np.ndarray, fetch: FetchSequence) -> None:
        region = scores.region
        truth = ACGT_INDEX[encode(fetch(region.contig, region.start, region.end))]
        scored = truth >= 0
        p = probs[scored]
        scores.probs[scored] = p
        with np.errstate(divide="ignore"):
            scores.loss_nats[scored] = -np.log(p[np.arange(p.shape[0]), truth[scored]])
            logs = np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), 0.0)
        scores.entropy_nats[scored] = -(p * logs).sum(axis=1)


def _batched(jobs: Iterator[_Job], size: int) -> Iterator[list[_Job]]:
    batch: list[_Job] = []
    for job in jobs:
        batch.append(job)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
