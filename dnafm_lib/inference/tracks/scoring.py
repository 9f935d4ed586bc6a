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

Batches and ranks: the jobs (one per pass, strand and window) are cut into batches of
``batch_size`` in one order; with several ranks (one process per GPU, ``Ranks``) rank r runs
batches r, r + N, r + 2N, … of that same sequence, so every batch holds the same windows as in a
one-rank run. Each base's probabilities come from at most two jobs (its strands) and each bin's
embedding sum from at most two windows (stride_bp ≥ bin_bp), so adding the ranks' partial sums
on rank 0 gives the one-rank bytes exactly. ``batch_size: auto`` probes the largest batch that
fits at the window length (doubling, bounded); an out-of-memory error mid-run halves the batch
and scores the chunk again from its start, so the result is that of a run at the smaller batch.
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass
from typing import Callable, ClassVar, Iterator, Sequence

import numpy as np

from dnafm_lib.core.errors import DnafmError
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

#: ``batch_size: auto`` doubles up to this many windows per forward pass on a GPU ...
AUTO_BATCH_MAX = 512
#: ... and up to this many on the CPU, where no out-of-memory error stops the probe (the host
#: swaps or the job is killed first) and larger batches gain nothing
AUTO_BATCH_MAX_CPU = 32

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ranks:
    """This process's place among the processes scoring one chunk (torchrun: RANK, WORLD_SIZE)."""

    rank: int = 0
    world: int = 1


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
    #: windows per forward pass, or "auto": the largest that fits the device (AUTO_BATCH_MAX)
    batch_size: int | str = 8
    seed: int = 0

    def problems(self) -> Iterator[tuple[str, str]]:
        # the window geometry tiling.check_geometry guards for the library's own callers
        if not 1 <= self.window_bp <= WINDOW_BP:
            yield "window_bp", f"must be between 1 and {WINDOW_BP}, got {self.window_bp}"
        elif not 1 <= self.stride_bp <= self.window_bp:
            yield "stride_bp", f"must be between 1 and window_bp ({self.window_bp}), got {self.stride_bp}"
        if self.masking not in MASKING:
            yield "masking", f"must be one of {', '.join(MASKING)}, got {self.masking!r}"
        for key in ("passes", "bin_bp"):
            if getattr(self, key) < 1:
                yield key, f"must be at least 1, got {getattr(self, key)}"
        if isinstance(self.batch_size, str):
            if self.batch_size != "auto":
                yield "batch_size", f"must be a positive integer or 'auto', got {self.batch_size!r}"
        elif self.batch_size < 1:
            yield "batch_size", f"must be at least 1 or 'auto', got {self.batch_size}"


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
    float32 on the CPU). With ``ranks`` of more than one process (a torch.distributed process
    group over gloo), each runs its share of the batches and rank 0 returns the scores; the
    other ranks return an empty list. After ``score_regions``, ``run_info`` says how it ran
    (batch size, ranks, device, tokens per second).
    """

    def __init__(self, model, settings: ScoringSettings, device="cpu", ranks: Ranks = Ranks()):
        import torch  # here, not at import: planning and gathering never need torch

        self.model = model.eval()
        self.settings = settings
        self.device = torch.device(device)
        self.ranks = ranks
        n_layers = len(model.blocks)
        layer = settings.embedding_layer
        if layer is not None:
            layer = layer + n_layers + 1 if layer < 0 else layer
            if not 0 <= layer <= n_layers:
                raise ValueError(
                    f"embedding layer {settings.embedding_layer} is outside 0..{n_layers} (or -{n_layers + 1}..-1)"
                )
        if ranks.world > 1 and layer is not None and settings.stride_bp < settings.bin_bp:
            # a bin would take sums from three or more windows: their order would depend on the ranks
            raise DnafmError(
                f"scoring on {ranks.world} ranks needs stride_bp ({settings.stride_bp}) of at least "
                f"bin_bp ({settings.bin_bp}) when embeddings are on"
            )
        self.embedding_layer = layer
        self.hidden_size = model.config.hidden_size
        self.run_info: dict = {}

    # ------------------------------------------------------------------ public

    def score_regions(
        self, regions: Sequence[Region], fetch: FetchSequence, contig_lengths: dict[str, int]
    ) -> list[RegionScores]:
        """Score every base of ``regions`` (each base once; N bases stay NaN)."""
        import torch

        batch_size = self.batch_size()
        backoffs = 0
        while True:
            started = time.monotonic()
            try:
                out, prob_sums, tokens = self._score_all(regions, fetch, contig_lengths, batch_size)
                failed = False
            except torch.cuda.OutOfMemoryError:
                out, prob_sums, tokens, failed = None, None, 0, True
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
            if not self._any_rank(failed):
                break
            if batch_size == 1:
                raise DnafmError(f"out of memory on {self.device} with one window per forward pass")
            # Again from the chunk's start: the same bytes as a run at the smaller batch.
            batch_size //= 2
            backoffs += 1
            log.warning("out of memory on %s: scoring this chunk again at batch size %d", self.device, batch_size)
        tokens = self._sum_over_ranks(np.array([tokens], dtype=np.int64))[0]
        if self.ranks.world > 1:
            for summed in prob_sums:
                summed[...] = self._sum_over_ranks(summed)
            if self.embedding_layer is not None:
                self._collect_window_bins(out)
        seconds = time.monotonic() - started
        self.run_info = {
            "batch_size": batch_size,
            "oom_backoffs": backoffs,
            "ranks": self.ranks.world,
            "device": str(self.device) if self.ranks.world == 1 else f"{self.ranks.world} x {self.device.type}",
            "tokens": int(tokens),
            "seconds": round(seconds, 3),
            "tokens_per_second": round(tokens / seconds, 1) if seconds > 0 else None,
        }
        if self.device.type == "cuda":
            self.run_info["device_name"] = torch.cuda.get_device_name(self.device)
        if self.ranks.rank != 0:
            return []
        strands = 2 if self.settings.reverse_complement else 1
        for scores, summed in zip(out, prob_sums):
            self._finish(scores, summed / strands, fetch)
        return out

    def batch_size(self) -> int:
        """The settings' batch size, or with ``auto`` the largest that fits on every rank's device."""
        if self.settings.batch_size != "auto":
            return int(self.settings.batch_size)
        found = self._probe_batch_size()
        if self.ranks.world > 1:
            import torch
            import torch.distributed as dist

            smallest = torch.tensor([found], dtype=torch.int64)
            dist.all_reduce(smallest, op=dist.ReduceOp.MIN)
            found = int(smallest.item())
        log.info(
            "batch_size auto: %d windows of %d nt per forward pass on %s", found, self.settings.window_bp, self.device
        )
        return found

    # ------------------------------------------------------------------ internals

    def _probe_batch_size(self) -> int:
        """Double the batch of full-length masked windows until the device runs out of memory."""
        import torch

        from dnafm_lib.inference import masked

        limit = AUTO_BATCH_MAX if self.device.type == "cuda" else AUTO_BATCH_MAX_CPU
        rng = np.random.default_rng(self.settings.seed)
        ids = np.asarray(ACGT_IDS, dtype=np.uint8)[rng.integers(0, 4, self.settings.window_bp)]
        window = frame(np.where(np.arange(ids.size) % self.settings.passes == 0, MASK_ID, ids)).astype(np.int64)
        fits, size = 0, 1
        while size <= limit:
            batch = torch.from_numpy(np.tile(window, (size, 1))).to(self.device)
            try:
                with torch.inference_mode():
                    hidden = masked.forward(self.model, batch, None, return_logits=False).last_hidden_state
                    rows = torch.arange(size, device=self.device)
                    masked.head_logits_at(self.model, hidden, rows, torch.ones_like(rows))
                    if self.device.type == "cuda":
                        torch.cuda.synchronize(self.device)
            except torch.cuda.OutOfMemoryError:
                break
            finally:
                del batch
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
            fits, size = size, size * 2
        if fits == 0:
            raise DnafmError(
                f"batch_size auto: one window of {self.settings.window_bp} nt does not fit in {self.device}'s memory"
            )
        return fits

    def _any_rank(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank (every rank gets the same answer)."""
        if self.ranks.world == 1:
            return flag
        return bool(self._sum_over_ranks(np.array([int(flag)], dtype=np.int64), everyone=True)[0])

    def _sum_over_ranks(self, values: np.ndarray, everyone: bool = False) -> np.ndarray:
        """``values`` summed over the ranks, on rank 0 (``everyone``: on every rank)."""
        if self.ranks.world == 1:
            return values
        import torch
        import torch.distributed as dist

        tensor = torch.from_numpy(np.ascontiguousarray(values))
        if everyone:
            dist.all_reduce(tensor)
        else:
            dist.reduce(tensor, dst=0)
        return tensor.numpy()

    def _score_all(
        self, regions: Sequence[Region], fetch: FetchSequence, contig_lengths: dict[str, int], batch_size: int
    ) -> tuple[list[RegionScores], list[np.ndarray], int]:
        """This rank's batches at ``batch_size``: the regions' empty scores, probability sums, tokens run."""
        s = self.settings
        out = []
        for region in regions:
            n = region.length
            # Only rank 0 holds a chunk of bins (at the 7B width 350 B per bp in float64); the
            # others keep their own windows' bin sums, 1/N of the chunk (_collect_window_bins).
            want_bins = self.embedding_layer is not None and self.ranks.rank == 0
            n_bins = -(-n // s.bin_bp)
            kept = n if self.ranks.rank == 0 else 0  # the scores rank 0 alone finishes and returns
            scores = RegionScores(
                region=region,
                bin_bp=s.bin_bp,
                probs=np.full((kept, 4), np.nan, dtype=np.float32),
                loss_nats=np.full(kept, np.nan, dtype=np.float32),
                entropy_nats=np.full(kept, np.nan, dtype=np.float32),
                bin_sums=np.zeros((n_bins, self.hidden_size), dtype=np.float64) if want_bins else None,
                bin_counts=np.zeros(n_bins, dtype=np.int64) if want_bins else None,
            )
            out.append(scores)
        jobs = self._jobs(regions, fetch, contig_lengths)
        prob_sums = [np.zeros((r.length, 4), dtype=np.float32) for r in regions]
        bases_before = np.cumsum([0] + [r.length for r in regions])  # of each region, in scoring order
        progress = Progress("scoring", int(bases_before[-1]), unit="bases") if self.ranks.rank == 0 else None
        tokens = 0
        self._window_bins: list[tuple[int, int, np.ndarray, np.ndarray]] = []
        for index, batch in enumerate(_batched(jobs, batch_size)):
            if index % self.ranks.world != self.ranks.rank:
                continue  # another rank's batch
            self._run_batch(batch, out, prob_sums)
            tokens += sum(job.input_ids.size for job in batch)
            if progress is not None:
                last = batch[-1]  # the bases before its window's kept span are done
                progress.update(
                    int(bases_before[last.region_index]) + last.window.keep_start - regions[last.region_index].start
                )
        if progress is not None:
            progress.finish()
        return out, prob_sums, tokens

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
        counts = np.bincount(bins - first, minlength=n_bins)
        if scores.bin_sums is None:  # a rank but the first: rank 0 adds these in (_collect_window_bins)
            self._window_bins.append((job.region_index, first, sums.cpu().numpy(), counts))
            return
        scores.bin_sums[first : first + n_bins] += sums.cpu().numpy()
        scores.bin_counts[first : first + n_bins] += counts

    def _collect_window_bins(self, out: list[RegionScores]) -> None:
        """Rank 0 adds every other rank's window bin sums to its own, rank by rank (gloo send/recv).

        A bin takes sums from at most two windows (stride_bp ≥ bin_bp), and a + b = b + a, so
        the result is the one-rank run's whatever rank scored which window.
        """
        import torch
        import torch.distributed as dist

        hidden = self.hidden_size
        if self.ranks.rank != 0:
            where = np.array([(r, first, len(c)) for r, first, _, c in self._window_bins], dtype=np.int64)
            where = where.reshape(-1, 3)
            sums = np.concatenate([x for _, _, x, _ in self._window_bins] or [np.zeros((0, hidden), np.float32)])
            counts = np.concatenate([c for _, _, _, c in self._window_bins] or [np.zeros(0, np.int64)])
            dist.send(torch.tensor([len(where)], dtype=torch.int64), dst=0)
            if len(where):
                dist.send(torch.from_numpy(np.ascontiguousarray(where)), dst=0)
                dist.send(torch.from_numpy(np.ascontiguousarray(sums, dtype=np.float32)), dst=0)
                dist.send(torch.from_numpy(np.ascontiguousarray(counts)), dst=0)
            self._window_bins = []
            return
        for source in range(1, self.ranks.world):
            size = torch.zeros(1, dtype=torch.int64)
            dist.recv(size, src=source)
            if not int(size.item()):
                continue
            where = torch.zeros((int(size.item()), 3), dtype=torch.int64)
            dist.recv(where, src=source)
            where = where.numpy()
            total = int(where[:, 2].sum())
            sums = torch.zeros((total, hidden), dtype=torch.float32)
            counts = torch.zeros(total, dtype=torch.int64)
            dist.recv(sums, src=source)
            dist.recv(counts, src=source)
            sums, counts, row = sums.numpy(), counts.numpy(), 0
            for region_index, first, n_bins in where:
                scores = out[region_index]
                scores.bin_sums[first : first + n_bins] += sums[row : row + n_bins]
                scores.bin_counts[first : first + n_bins] += counts[row : row + n_bins]
                row += n_bins

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
