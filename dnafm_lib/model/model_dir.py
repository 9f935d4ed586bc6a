"""Model checkpoints in the Hugging Face layout of the published AIDO.DNA models.

A directory holds ``config.json`` and the weights as ``model.safetensors``, sharded
``model-0000x-of-0000y.safetensors`` with ``model.safetensors.index.json``, or
``pytorch_model.bin`` (read with ``weights_only=True``: nothing is unpickled beyond tensors).

``save_model`` records a CRC-32 of each weights file's tensors in config.json
(``dnafm_weights_crc32``, which other readers ignore); ``load_model`` recomputes it when
present, so a flipped byte is caught. CRC-32 rather than a cryptographic hash: it catches
corruption (every burst of up to 32 flipped bits) at memory speed with ISA-L, where sha256
would add a minute to each load of the 7B model; it is no defence against tampering. (Not in the safetensors metadata: the Rust writer orders
metadata keys at random, and two saves of the same weights must be the same bytes.) Whatever is wrong with a directory (config.json of the
wrong shape, types or ranges; an index without ``weight_map``; a truncated weights file;
integer, NaN or infinite weights; a checksum mismatch) is one ``CheckpointError`` naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from dnafm_lib.core.atomic import atomic_dir

try:  # ISA-L's CRC-32: ~5x zlib's (the 7B model's 14.5 GB in seconds)
    from isal.isal_zlib import crc32 as _crc32
except ImportError:
    from zlib import crc32 as _crc32
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.model.encoder import PRESETS, DnaFmForMaskedLM, ModelConfig, build_model, preset_config

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_BIN_NAME = "pytorch_model.bin"
TORCH_BIN_INDEX = "pytorch_model.bin.index.json"
MODEL_KIND = "save_model"  # the marker of a model directory (core/output_dir.py)
CHECKSUM_KEY = "dnafm_weights_crc32"  # config.json: {weights file: tensors_crc32 of its tensors}

# Copies of the tied decoder, which Hugging Face may or may not write.
TIED_KEYS = {
    "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
    "cls.predictions.decoder.bias": "cls.predictions.bias",
}
# Buffers and unused heads that some exports carry; they hold nothing this model computes with.
IGNORED_SUFFIXES = ("embeddings.position_ids", "rotary_pos_emb.inv_freq")
IGNORED_PREFIXES = ("bert.pooler.",)


class CheckpointError(DnafmError):
    """A checkpoint directory that cannot be loaded; the message names the file and what is wrong."""


# config.json fields the model reads: expected type and the range a usable model needs.
_INT_RANGES = {
    "hidden_size": (1, None),
    "num_hidden_layers": (1, None),
    "num_attention_heads": (1, None),
    "intermediate_size": (1, None),
    "vocab_size": (1, None),
    "max_position_embeddings": (1, None),
    "pad_token_id": (0, None),
}
_FLOAT_RANGES = {  # (low, high, low inclusive)
    "layer_norm_eps": (0.0, 1.0, False),
    "rotary_percent": (0.0, 1.0, False),
    "rotary_base": (0.0, None, False),
    "hidden_dropout_prob": (0.0, 1.0, True),
    "attention_probs_dropout_prob": (0.0, 1.0, True),
    "initializer_range": (0.0, None, True),
}


def _check_config_values(data: dict[str, Any], where: str) -> None:
    """Types and ranges of the fields the model reads, all problems in one message."""
    problems = []
    for key, (low, high) in _INT_RANGES.items():
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{key} is {value!r}, expected an integer")
        elif value < low or (high is not None and value > high):
            problems.append(f"{key} is {value}, expected at least {low}")
    for key, (low, high, inclusive) in _FLOAT_RANGES.items():
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{key} is {value!r}, expected a number")
        elif (
            not math.isfinite(value)
            or value < low
            or (value == low and not inclusive)
            or (high is not None and value > high)
        ):
            bounds = f"{'[' if inclusive else '('}{low}, {high if high is not None else '∞'}" + ("]" if high else ")")
            problems.append(f"{key} is {value}, expected a number in {bounds}")
    if "add_linear_bias" in data and not isinstance(data["add_linear_bias"], bool):
        problems.append(f"add_linear_bias is {data['add_linear_bias']!r}, expected true or false")
    if "normalization_type" in data and not isinstance(data["normalization_type"], str):
        problems.append(f"normalization_type is {data['normalization_type']!r}, expected a string")
    pad, vocab = data.get("pad_token_id"), data.get("vocab_size")
    if not problems and isinstance(pad, int) and isinstance(vocab, int) and pad >= vocab:
        problems.append(f"pad_token_id {pad} is not below vocab_size {vocab}")
    if problems:
        raise CheckpointError(f"{where}: " + "; ".join(problems))


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
    if not isinstance(data, dict):
        raise CheckpointError(f"{where}: expected a JSON object, found {type(data).__name__}")
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
    _check_config_values(data, where)
    known = {f.name for f in dataclasses.fields(ModelConfig) if not f.metadata.get("runtime")}
    kwargs = {k: v for k, v in data.items() if k in known and v is not None}
    try:
        return ModelConfig(**kwargs)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: {exc}") from None


# --------------------------------------------------------------------------- reading weights


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a directory, expected a JSON file") from None
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{path}: not UTF-8 text (byte offset {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror})") from None


def tensors_crc32(state: dict[str, torch.Tensor]) -> str:
    """CRC-32 (8 hex digits) over names, dtypes, shapes and bytes of ``state``, in name order."""
    crc = 0
    for key in sorted(state):
        tensor = state[key].detach().to("cpu").contiguous()
        crc = _crc32(f"{key}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode(), crc)
        crc = _crc32(tensor.reshape(-1).view(torch.uint8).numpy().data, crc)
    return f"{crc & 0xFFFFFFFF:08x}"


def _read_safetensors(path: Path, checksums: dict[str, str]) -> dict[str, torch.Tensor]:
    """One safetensors file; if ``checksums`` names it, its tensors must hash to that entry."""
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, expected a safetensors file")
    try:
        state = load_file(path)
    except SafetensorError as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    expected = checksums.get(path.name)
    if expected is not None and tensors_crc32(state) != expected:
        raise CheckpointError(
            f"{path}: the tensors' CRC-32 differs from the one in {CONFIG_NAME} ({CHECKSUM_KEY}): "
            "the file is corrupt or was replaced"
        )
    return state


def _read_bin(path: Path) -> dict[str, torch.Tensor]:
    """One ``pytorch_model.bin``-style file, loaded tensors-only."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses arbitrary pickles: say so plainly
        raise CheckpointError(f"{path}: not a tensor-only PyTorch checkpoint ({exc})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a dictionary of tensors")
    return state


def _read_index(directory: Path, index_path: Path, reader) -> dict[str, torch.Tensor]:
    """The shards an index's ``weight_map`` names, each read with ``reader`` and checked to hold its weights."""
    index = _read_json(index_path)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if (
        not isinstance(weight_map, dict)
        or not weight_map
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items())
    ):
        raise CheckpointError(
            f"{index_path}: expected a JSON object whose 'weight_map' maps each weight name to a shard file"
        )
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        shard_path = directory / shard
        if shard_path.resolve().parent != directory.resolve():
            raise CheckpointError(f"{index_path}: shard {shard!r} lies outside the checkpoint directory")
        if not shard_path.exists():
            raise CheckpointError(f"{index_path}: shard {shard} is missing")
        shard_state = reader(shard_path)
        listed = {k for k, v in weight_map.items() if v == shard}
        if not listed <= set(shard_state):
            absent = sorted(listed - set(shard_state))
            raise CheckpointError(f"{shard_path}: lacks {', '.join(absent[:5])} that {index_path.name} puts there")
        state.update(shard_state)
    return state


def _read_state_dict(directory: Path, checksums: dict[str, str]) -> dict[str, torch.Tensor]:
    """All weights of ``directory``; a file named in ``checksums`` must hash to its entry."""

    def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
        return _read_safetensors(path, checksums)

    if (directory / SAFETENSORS_NAME).exists():
        return read_safetensors(directory / SAFETENSORS_NAME)
    if (directory / SAFETENSORS_INDEX).exists():
        return _read_index(directory, directory / SAFETENSORS_INDEX, read_safetensors)
    if (directory / TORCH_BIN_NAME).exists():
        return _read_bin(directory / TORCH_BIN_NAME)
    if (directory / TORCH_BIN_INDEX).exists():
        return _read_index(directory, directory / TORCH_BIN_INDEX, _read_bin)
    raise CheckpointError(
        f"{directory}: no weights found (expected {SAFETENSORS_NAME}, {SAFETENSORS_INDEX}, "
        f"{TORCH_BIN_NAME} or {TORCH_BIN_INDEX})"
    )


def _check_values(state: dict[str, torch.Tensor], where: str) -> None:
    """Weights must be floating point and finite: NaN or infinity would poison every output silently."""
    not_float = sorted(
        f"{k} ({str(v.dtype).removeprefix('torch.')})" for k, v in state.items() if not v.is_floating_point()
    )
    if not_float:
        raise CheckpointError(
            f"{where}: weights must be floating point; found {', '.join(not_float[:5])}"
            + (f" and {len(not_float) - 5} more" if len(not_float) > 5 else "")
        )
    # NaN propagates through min/max and ±inf is its own extreme: one reduction, no mask tensor
    # (measured 18x faster than isfinite().all() on fp32)
    not_finite = sorted(
        k
        for k, v in state.items()
        if v.numel() and not all(math.isfinite(float(extreme)) for extreme in torch.aminmax(v))
    )
    if not_finite:
        raise CheckpointError(
            f"{where}: NaN or infinite values in {', '.join(not_finite[:5])}"
            + (f" and {len(not_finite) - 5} more" if len(not_finite) > 5 else "")
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
    _check_values(state, where)
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
            raise CheckpointError(f"{name}: neither a model preset ({', '.join(PRESETS)}) nor a checkpoint directory")
        config_path = directory / CONFIG_NAME
        if not config_path.exists():
            raise CheckpointError(f"{directory}: no {CONFIG_NAME}")
        config_data = _read_json(config_path)
        config = dataclasses.replace(config_from_json(config_data, str(config_path)), **runtime)
        checksums = config_data.get(CHECKSUM_KEY) or {}
        if not isinstance(checksums, dict) or not all(isinstance(v, str) for v in checksums.values()):
            raise CheckpointError(f"{config_path}: {CHECKSUM_KEY} must map weights file names to CRC-32 strings")
        model = build_model(config, device="meta")
        load_state_dict_into(model, _read_state_dict(directory, checksums), str(directory))
        if device is not None:
            model = model.to(device)
    if dtype is not None:
        model = model.to(dtype)
    return model.eval()


def save_model(
    model: DnaFmForMaskedLM,
    path: str | os.PathLike,
    *,
    max_shard_bytes: int = 5 * 1024**3,
    extra_config: dict[str, Any] | None = None,
) -> Path:
    """Write config.json and safetensors (sharded with an index above ``max_shard_bytes``).

    The directory appears whole or not at all. The tied decoder keys are not written, as
    Hugging Face does not write them either. ``extra_config`` adds fields to config.json
    (ones the model ignores, such as the pretraining context).
    """
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    dtypes = {t.dtype for t in state.values()}
    config_json = {
        **config_to_json(model.config, dtype=dtypes.pop() if len(dtypes) == 1 else None),
        **(extra_config or {}),
    }
    final = Path(path)
    with atomic_dir(final, kind=MODEL_KIND) as tmp:
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
        checksums = {}
        if len(shards) == 1:
            save_file(shards[0], tmp / SAFETENSORS_NAME, metadata=metadata)
            checksums[SAFETENSORS_NAME] = tensors_crc32(shards[0])
        else:
            weight_map = {}
            for number, shard in enumerate(shards, start=1):
                name = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
                save_file(shard, tmp / name, metadata=metadata)
                checksums[name] = tensors_crc32(shard)
                weight_map.update({key: name for key in shard})
            total = sum(t.numel() * t.element_size() for t in state.values())
            index = {"metadata": {"total_size": total}, "weight_map": weight_map}
            (tmp / SAFETENSORS_INDEX).write_text(json.dumps(index, indent=2) + "\n")
        (tmp / CONFIG_NAME).write_text(json.dumps({**config_json, CHECKSUM_KEY: checksums}, indent=2) + "\n")
    return final
