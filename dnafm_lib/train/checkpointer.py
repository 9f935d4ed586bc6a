"""Training checkpoints with torch.distributed.checkpoint, and resume.

Layout: ``{run_dir}/checkpoints/step_{step:08d}/`` holds the DCP files (each rank writes its
own shards) plus ``progress.json`` (step, world size, tokens seen). A checkpoint is written
under ``.tmp-step_*`` — in the background, while training goes on (``Checkpointer``) — and
renamed at the first step boundary after every rank has finished, so a ``step_*`` directory is
always whole and a hard kill (SIGKILL, OOM, node failure) loses at most one checkpoint
interval; the newest ``keep`` are kept. DCP stores global tensors, so a checkpoint saved by W
ranks resumes on any W′ (the new ranks read their own slices).

Resume: ``latest_checkpoint(run_dir)`` is the highest ``step_*``; the loop loads it
automatically and continues with the next step's batch, so losses after a resume equal an
uninterrupted run's (bit-exactly on CPU, where kernels are deterministic). DCP keeps its index
as a pickle (``.metadata``): it is checked to hold only DCP's own types before DCP reads it.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint import StorageWriter
from torch.distributed.checkpoint.state_dict import (
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.train.distributed import DistributedContext, barrier

PROGRESS_FILE = "progress.json"
_STEP_DIR = re.compile(r"^step_(\d{8,})$")


def checkpoint_root(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def checkpoint_dir(run_dir: str | os.PathLike, step: int) -> Path:
    return checkpoint_root(run_dir) / f"step_{step:08d}"


def list_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    root = checkpoint_root(run_dir)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _STEP_DIR.match(path.name)
        if match and path.is_dir() and (path / PROGRESS_FILE).exists():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def read_progress(path: str | os.PathLike) -> dict:
    return json.loads((Path(path) / PROGRESS_FILE).read_text())


def _state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    return {
        "model": get_model_state_dict(model),
        "optim": get_optimizer_state_dict(model, optimizer),
    }


def _finalize(run_dir: Path, tmp: Path, step: int, record: dict, keep: int) -> Path:
    """Main rank, after every rank's shards are written: progress file, rename, prune."""
    final = checkpoint_dir(run_dir, step)
    (tmp / PROGRESS_FILE).write_text(json.dumps(record, indent=2) + "\n")
    if final.exists():  # the same step saved before (e.g. preempted right after a periodic save)
        shutil.rmtree(final)
    os.replace(tmp, final)
    for _, old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


@dataclass
class _PendingSave:
    step: int
    tmp: Path
    record: dict
    future: Future | None  # None: written synchronously


class Checkpointer:
    """Saves and loads a run's checkpoints; every method is collective (all ranks call it).

    ``save`` copies the state to host memory and returns; the files are written by a
    background thread (``dcp.async_save``) while training goes on. A save becomes a
    ``step_*`` directory when ``wait`` finishes it: as soon as every rank's writes are done
    (the loop polls ``writes_finished`` each step), else at the next save, before a load, and
    in ``close``. Background saves talk over their own gloo group, so they never interleave
    with the training collectives of the main thread.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        ctx: DistributedContext,
        *,
        keep: int,
        asynchronous: bool = True,
        storage_writer: Callable[[str], StorageWriter] = dcp.FileSystemWriter,
    ):
        self.run_dir = Path(run_dir)
        self.ctx = ctx
        self.keep = keep
        self.asynchronous = asynchronous
        self._storage_writer = storage_writer
        self._pending: _PendingSave | None = None
        self._group = dist.new_group(backend="gloo") if asynchronous else None

    def latest(self) -> Path | None:
        return latest_checkpoint(self.run_dir)

    def load_latest(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict | None:
        """Load the newest checkpoint into ``model`` and ``optimizer``; its progress, or None."""
        self.wait()
        latest = self.latest()
        return None if latest is None else {**load_checkpoint(latest, model, optimizer), "path": str(latest)}

    def save(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, progress: dict) -> None:
        """Start saving the state after ``step``; it is written to disk in the background."""
        self.wait()
        tmp = checkpoint_dir(self.run_dir, step).with_name(f".tmp-step_{step:08d}")
        if self.ctx.is_main:
            shutil.rmtree(tmp, ignore_errors=True)  # a save interrupted earlier
            tmp.mkdir(parents=True)
        barrier(self.ctx)
        record = {**progress, "step": step, "world_size": self.ctx.world_size}
        writer = self._storage_writer(str(tmp))
        future = None
        if self.asynchronous:
            future = dcp.async_save(_state(model, optimizer), storage_writer=writer, process_group=self._group)
        else:
            dcp.save(_state(model, optimizer), storage_writer=writer)
        self._pending = _PendingSave(step, tmp, record, future)

    @property
    def in_flight(self) -> bool:
        """A save started and not yet finished (its files may still be being written)."""
        return self._pending is not None

    @property
    def writes_finished(self) -> bool:
        """This rank's files of the save in flight are all written (False when none is in flight).

        The loop asks every step and, once every rank says so, calls ``wait`` (which then does not
        block): the save becomes the resumable latest checkpoint at once, not at the next save, so
        a hard kill loses at most one checkpoint interval.
        """
        pending = self._pending
        return pending is not None and (pending.future is None or pending.future.done())

    def wait(self) -> Path | None:
        """Finish the save in flight, if any: the directory it became."""
        pending, self._pending = self._pending, None
        if pending is None:
            return None
        if pending.future is not None:
            pending.future.result()
        barrier(self.ctx)
        final = checkpoint_dir(self.run_dir, pending.step)
        if self.ctx.is_main:
            _finalize(self.run_dir, pending.tmp, pending.step, {**pending.record, "saved_unix": time.time()}, self.keep)
        barrier(self.ctx)
        return final

    def abandon(self) -> None:
        """After an error: let this rank's background writes end, without making a checkpoint of them."""
        pending, self._pending = self._pending, None
        if pending is not None and pending.future is not None:
            try:
                pending.future.result()
            except Exception:  # noqa: BLE001 - the error being raised already says what went wrong
                pass

    def close(self) -> None:
        self.wait()
        if self._group is not None:
            dist.destroy_process_group(self._group)
            self._group = None


# DCP writes its index as a pickle (``.metadata``); these are the globals it refers to.
DCP_METADATA_FILE = ".metadata"
_DCP_METADATA_MODULE = "torch.distributed.checkpoint.metadata"
_DCP_ALLOWED_GLOBALS = {
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
    ("torch", "Size"),
    ("torch.serialization", "_get_layout"),
    ("pathlib", "PosixPath"),
    ("pathlib", "PurePosixPath"),
    ("collections", "OrderedDict"),
}


class UnsafeCheckpointError(DnafmError):
    """A checkpoint whose metadata pickle refers to something a DCP checkpoint never holds."""


class _DcpMetadataUnpickler(pickle.Unpickler):
    """Resolves only the classes DCP's metadata holds (and torch dtypes); anything else is refused."""

    def find_class(self, module: str, name: str):
        allowed = (module, name) in _DCP_ALLOWED_GLOBALS or (
            module == "torch" and isinstance(getattr(torch, name, None), torch.dtype)
        )
        if module == _DCP_METADATA_MODULE:  # its own classes, not what it imports
            found = getattr(dcp.metadata, name, None)
            allowed = isinstance(found, type) and found.__module__ == _DCP_METADATA_MODULE
        if not allowed:
            raise UnsafeCheckpointError(f"refers to {module}.{name}")
        return super().find_class(module, name)


def check_dcp_metadata(path: str | os.PathLike) -> None:
    """Unpickle ``path/.metadata`` with only DCP's own classes allowed, before torch unpickles it freely.

    A checkpoint directory copied from elsewhere (resume, ``dnafm export``) then cannot run code.
    """
    metadata = Path(path) / DCP_METADATA_FILE
    try:
        with open(metadata, "rb") as handle:
            _DcpMetadataUnpickler(handle).load()
    except FileNotFoundError:
        raise UnsafeCheckpointError(f"{path}: not a torch.distributed checkpoint (no {DCP_METADATA_FILE})") from None
    except UnsafeCheckpointError as exc:
        raise UnsafeCheckpointError(
            f"{metadata}: {exc}, which a torch.distributed checkpoint never holds; refusing to load it"
        ) from None
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as exc:
        raise UnsafeCheckpointError(
            f"{metadata}: unreadable checkpoint metadata ({type(exc).__name__}: {exc})"
        ) from None


def load_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Collective: load model and optimizer state (any saving world size); return progress."""
    check_dcp_metadata(path)
    state = _state(model, optimizer)  # the optimizer state is created here, then overwritten
    dcp.load(state, checkpoint_id=str(path))
    set_model_state_dict(model, state["model"])
    set_optimizer_state_dict(model, optimizer, state["optim"])
    return read_progress(path)


def load_model_weights(path: str | os.PathLike, model: nn.Module) -> None:
    """Read only the model's weights into a plain (unsharded) model, in one process: for export."""
    check_dcp_metadata(path)
    state = {"model": model.state_dict()}
    dcp.load(state, checkpoint_id=str(path))
    model.load_state_dict(state["model"])
