"""Model checkpoints in the Hugging Face layout of the published AIDO.DNA models.

A directory holds ``config.json`` and the weights as ``model.safetensors``, sharded
``model-0000x-of-0000y.safetensors`` with ``model.safetensors.index.json``, or
``pytorch_model.bin`` (read with ``weights_only=True``: nothing is unpickled beyond tensors).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .atomic import atomic_dir
from .errors import DnafmError
from .model import PRESETS, DnaFmForMaskedLM, ModelConfig, build_model, preset_config

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_BIN_NAME = "pytorch_model.bin"
TORCH_BIN_INDEX = "pytorch_model.bin.index.json"

# Copies of the tied decoder, which Hugging Face may or may not write.
TIED_KEYS = {
    "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
    "cls.predictions.decoder.bias": "cls.predictions.bias",
}
# Buffers and unused heads that some exports carry; they hold nothing this model computes with.
IGNORED_SUFFIXES = ("embeddings.position_ids", "rotary_pos_emb.inv_freq")
IGNORED_PREFIXES = ("bert.pooler.",)


class CheckpointError(DnafmError):
    pass


# --------------------------------------------------------------------------- config.json


def config_to_json(config: ModelConfig, dtype: torch.dtype | None = None) -> dict[str, Any]:
    arch = config.architecture_dict()
    data = {
        "architectures": ["RNABertForMaskedLM"],
        "model_type": "rnabert",
        **arch,
        "position_embedding_type": "rope",
        "hidden_act": "swiglu",
    }
    if dtype is not None:
        data["torch_dtype"] = str(dtype).removeprefix("torch.")
    return data


def config_from_json(data: dict[str, Any], where: str) -> ModelConfig:
    """Read the fields the model uses; ignore the rest (architectures, transformers_version, …)."""
    if data.get("model_type", "rnabert") != "rnabert":
        raise CheckpointError(f"{where}: model_type {data.get('model_type')!r} is not 'rnabert'")
    if data.get("position_embedding_type", "rope") != "rope":
        raise CheckpointError(f"{where}: position_embedding_type {data['position_embedding_type']!r} is not 'rope'")
    if data.get("hidden_act", "swiglu") != "swiglu":
        raise CheckpointError(f"{where}: hidden_act {data['hidden_act']!r} is not 'swiglu'")
    required = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")
    missing = [k for k in required if k not in data]
    if missing:
        raise CheckpointError(f"{where}: missing {', '.join(missing)}")
    known = {f.name for f in dataclasses.fields(ModelConfig) if not f.metadata.get("runtime")}
    kwargs = {k: v for k, v in data.items() if k in known and v is not None}
    try:
        return ModelConfig(**kwargs)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: {exc}") from None


# --------------------------------------------------------------------------- reading weights


def _read_state_dict(directory: Path) -> dict[str, torch.Tensor]:
    def read_bin(path: Path) -> dict[str, torch.Tensor]:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # weights_only refuses arbitrary pickles: say so plainly
            raise CheckpointError(f"{path}: not a tensor-only PyTorch checkpoint ({exc})") from None

    def read_index(index_path: Path, reader) -> dict[str, torch.Tensor]:
        weight_map = json.loads(index_path.read_text())["weight_map"]
        state: dict[str, torch.Tensor] = {}
        for shard in sorted(set(weight_map.values())):
            shard_path = directory / shard
            if shard_path.resolve().parent != directory.resolve():
                raise CheckpointError(f"{index_path}: shard {shard!r} lies outside the checkpoint directory")
            if not shard_path.exists():
                raise CheckpointError(f"{index_path}: shard {shard} is missing")
            state.update(reader(shard_path))
        return state

    if (directory / SAFETENSORS_NAME).exists():
        return load_file(directory / SAFETENSORS_NAME)
    if (directory / SAFETENSORS_INDEX).exists():
        return read_index(directory / SAFETENSORS_INDEX, load_file)
    if (directory / TORCH_BIN_NAME).exists():
        return read_bin(directory / TORCH_BIN_NAME)
    if (directory / TORCH_BIN_INDEX).exists():
        return read_index(directory / TORCH_BIN_INDEX, read_bin)
    raise CheckpointError(
        f"{directory}: no weights found (expected {SAFETENSORS_NAME}, {SAFETENSORS_INDEX}, "
        f"{TORCH_BIN_NAME} or {TORCH_BIN_INDEX})"
    )


def _normalise_keys(state: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """Drop tied copies and ignorable buffers; accept a bare backbone's keys without ``bert.``."""
    if state and not any(k.startswith(("bert.", "cls.")) for k in state):
        state = {f"bert.{k}": v for k, v in state.items()}
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key.endswith(IGNORED_SUFFIXES) or key.startswith(IGNORED_PREFIXES):
            continue
        if key in TIED_KEYS:
            source = state.get(TIED_KEYS[key])
            if source is not None and not torch.equal(source, tensor):
                raise CheckpointError(f"{where}: {key} differs from {TIED_KEYS[key]}, but the two are tied")
            continue
        out[key] = tensor
    return out


def load_state_dict_into(model: DnaFmForMaskedLM, state: dict[str, torch.Tensor], where: str) -> None:
    """Strict load that lists every missing, unexpected and mis-shaped key in one message."""
    state = _normalise_keys(state, where)
    expected = {k: v for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)}, model {tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    problems = []
    if missing:
        problems.append("missing keys: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(unexpected))
    if wrong_shape:
        problems.append("wrong shapes: " + "; ".join(wrong_shape))
    if problems:
        raise CheckpointError(f"{where}: weights do not match the configuration\n  " + "\n  ".join(problems))
    model.load_state_dict(state, strict=True, assign=True)


# --------------------------------------------------------------------------- public API


def load_model(
    path_or_preset: str | os.PathLike,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    seed: int | None = 0,
    **runtime: Any,
) -> DnaFmForMaskedLM:
    """A preset name (``tiny``, ``300m``, ``7b``: freshly initialised) or a checkpoint directory.

    ``runtime`` sets switches that do not change the weights (``attn_backend``). The model is
    returned in eval mode.
    """
    name = str(path_or_preset)
    if name in PRESETS and not Path(name).is_dir():
        if seed is not None:
            torch.manual_seed(seed)
        model = build_model(preset_config(name, **runtime), device=device)
    else:
        directory = Path(name)
        if not directory.is_dir():
            raise CheckpointError(
                f"{name}: neither a model preset ({', '.join(PRESETS)}) nor a checkpoint directory"
            )
        config_path = directory / CONFIG_NAME
        if not config_path.exists():
            raise CheckpointError(f"{directory}: no {CONFIG_NAME}")
        try:
            config_data = json.loads(config_path.read_text())
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{config_path}: not valid JSON ({exc})") from None
        config = dataclasses.replace(config_from_json(config_data, str(config_path)), **runtime)
        model = build_model(config, device="meta")
        load_state_dict_into(model, _read_state_dict(directory), str(directory))
        if device is not None:
            model = model.to(device)
    if dtype is not None:
        model = model.to(dtype)
    return model.eval()


def save_model(model: DnaFmForMaskedLM, path: str | os.PathLike, *, max_shard_bytes: int = 5 * 1024**3) -> Path:
    """Write config.json and safetensors (sharded with an index above ``max_shard_bytes``).

    The directory appears whole or not at all. The tied decoder keys are not written, as
    Hugging Face does not write them either.
    """
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    dtypes = {t.dtype for t in state.values()}
    config_json = config_to_json(model.config, dtype=dtypes.pop() if len(dtypes) == 1 else None)
    final = Path(path)
    with atomic_dir(final) as tmp:
        (tmp / CONFIG_NAME).write_text(json.dumps(config_json, indent=2) + "\n")
        shards: list[dict[str, torch.Tensor]] = [{}]
        size = 0
        for key, tensor in state.items():
            nbytes = tensor.numel() * tensor.element_size()
            if shards[-1] and size + nbytes > max_shard_bytes:
                shards.append({})
                size = 0
            shards[-1][key] = tensor
            size += nbytes
        metadata = {"format": "pt"}
        if len(shards) == 1:
            save_file(shards[0], tmp / SAFETENSORS_NAME, metadata=metadata)
        else:
            weight_map = {}
            for number, shard in enumerate(shards, start=1):
                name = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
                save_file(shard, tmp / name, metadata=metadata)
                weight_map.update({key: name for key in shard})
            total = sum(t.numel() * t.element_size() for t in state.values())
            index = {"metadata": {"total_size": total}, "weight_map": weight_map}
            (tmp / SAFETENSORS_INDEX).write_text(json.dumps(index, indent=2) + "\n")
    return final
