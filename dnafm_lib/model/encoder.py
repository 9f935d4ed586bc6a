"""The DNA FM encoder: a pre-LayerNorm BERT with RoPE, SwiGLU and a tied masked-LM head.

Module and parameter names follow the Hugging Face layout of the published AIDO.DNA
checkpoints (``bert.encoder.layer.{i}.attention.self.query`` …), so a state dict from those
files loads with no renaming. Read top to bottom: config and presets, rotary embedding,
attention, MLP, block, encoder, MLM head, the full model.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dnafm_lib.core.errors import DnafmError

try:  # optional: the flash-attn package (unpadded variable-length kernels)
    from flash_attn import flash_attn_func, flash_attn_varlen_func  # type: ignore

    HAVE_FLASH_ATTN = True
except Exception:  # ImportError, or a CUDA build mismatch
    HAVE_FLASH_ATTN = False

try:  # optional: FlashAttention-4's CuTe kernels (PyPI flash-attn-4); head dims to 256 on Hopper
    from flash_attn.cute import flash_attn_func as fa4_func  # type: ignore
    from flash_attn.cute import flash_attn_varlen_func as fa4_varlen_func  # type: ignore

    HAVE_FLASH_ATTN_4 = True
except Exception:  # ImportError, or no CUDA driver / cutlass DSL
    HAVE_FLASH_ATTN_4 = False

ATTENTION_BACKENDS = ("sdpa", "flash_attn", "flash_attn_4", "eager")
# Which optional package each kernel backend needs, and whether it imported here.
BACKEND_PACKAGES = {"flash_attn": ("flash-attn", HAVE_FLASH_ATTN), "flash_attn_4": ("flash-attn-4", HAVE_FLASH_ATTN_4)}


def swiglu_intermediate_size(hidden_size: int) -> int:
    """floor(8/3 · hidden / 64) · 64, the width the published models use."""
    return int(8 * hidden_size / 3 / 64) * 64


# plain dataclass fields, like every config class here: same shape, different settings
@dataclass
class ModelConfig:
    """Architecture (saved to config.json) plus runtime switches (not saved)."""

    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 2688
    vocab_size: int = 16
    max_position_embeddings: int = 4000
    layer_norm_eps: float = 1e-5
    add_linear_bias: bool = True
    rotary_percent: float = 1.0
    rotary_base: float = 10000.0
    normalization_type: str = "LayerNorm"
    pad_token_id: int = 0
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    initializer_range: float = 0.02
    # Runtime only: how to compute, not what is computed.
    attn_backend: str = field(default="sdpa", metadata={"runtime": True})

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by num_attention_heads {self.num_attention_heads}"
            )
        if self.rotary_dim % 2:
            raise ValueError(f"rotary dimension {self.rotary_dim} must be even")
        if self.normalization_type not in ("LayerNorm", "RMSNorm"):
            raise ValueError(f"normalization_type must be LayerNorm or RMSNorm, got {self.normalization_type!r}")
        if self.attn_backend not in ATTENTION_BACKENDS:
            raise ValueError(f"attn_backend must be one of {ATTENTION_BACKENDS}, got {self.attn_backend!r}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def rotary_dim(self) -> int:
        dim = self.head_dim
        return int(dim * self.rotary_percent) if self.rotary_percent < 1.0 else dim

    def architecture_dict(self) -> dict[str, Any]:
        """The fields that define the weights (what config.json stores)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.metadata.get("runtime")}


def _preset(hidden: int, layers: int, heads: int) -> ModelConfig:
    return ModelConfig(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=swiglu_intermediate_size(hidden),
    )


PRESETS: dict[str, ModelConfig] = {
    # CPU tests and the offline demo: 4 heads of 32, two blocks.
    "tiny": _preset(hidden=128, layers=2, heads=4),
    "300m": _preset(hidden=1024, layers=24, heads=16),
    "7b": _preset(hidden=4352, layers=32, heads=32),
}


class UnknownPresetError(DnafmError, KeyError):
    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def preset_config(name: str, **overrides: Any) -> ModelConfig:
    if name not in PRESETS:
        raise UnknownPresetError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


# --------------------------------------------------------------------------- rotary embedding


def rotary_cos_sin(
    seq_len: int, rotary_dim: int, base: float, device: torch.device | None, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables (seq_len, rotary_dim), rotate-half layout: frequencies repeat twice."""
    inv_freq = 1.0 / (base ** (torch.arange(0, rotary_dim, 2, device=device, dtype=torch.float32) / rotary_dim))
    positions = torch.arange(seq_len, device=device, dtype=torch.float32)
    angles = torch.outer(positions, inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first ``cos.shape[-1]`` channels of x (..., L, head_dim); pass the rest."""
    rot = cos.shape[-1]
    if rot == x.shape[-1]:
        return x * cos + rotate_half(x) * sin
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    return torch.cat((x_rot * cos + rotate_half(x_rot) * sin, x_pass), dim=-1)


# --------------------------------------------------------------------------- attention


# the checkpoint's module names and shapes, spelled out per module on purpose (the layers differ)
class SelfAttentionProjections(nn.Module):
    """query/key/value linears (named ``attention.self`` in the checkpoint)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        bias = config.add_linear_bias
        self.query = nn.Linear(config.hidden_size, config.hidden_size, bias=bias)
        self.key = nn.Linear(config.hidden_size, config.hidden_size, bias=bias)
        self.value = nn.Linear(config.hidden_size, config.hidden_size, bias=bias)


class AttentionOutput(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size, bias=config.add_linear_bias)


def _norm(config: ModelConfig) -> nn.Module:
    if config.normalization_type == "RMSNorm":
        return nn.RMSNorm(config.hidden_size, eps=config.layer_norm_eps)
    return nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


class Attention(nn.Module):
    """Pre-LN multi-head self-attention with RoPE; returns ``x + Attn(LN(x))``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.ln = _norm(config)
        self.self = SelfAttentionProjections(config)
        self.output = AttentionOutput(config)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], padding: "Padding") -> torch.Tensor:
        cfg = self.config
        batch, length, _ = x.shape
        h = self.ln(x)
        shape = (batch, length, cfg.num_attention_heads, cfg.head_dim)
        q = self.self.query(h).view(shape)
        k = self.self.key(h).view(shape)
        v = self.self.value(h).view(shape)
        cos, sin = rope  # (L, rot) — broadcast over batch and heads in (B, L, H, D) layout
        cos, sin = cos[:, None, :], sin[:, None, :]
        q = apply_rotary(q, cos, sin)
        k = apply_rotary(k, cos, sin)
        dropout = cfg.attention_probs_dropout_prob if self.training else 0.0
        context = _attend(q, k, v, padding, cfg.attn_backend, dropout)
        out = self.output.dense(context.reshape(batch, length, cfg.hidden_size))
        return x + F.dropout(out, p=cfg.hidden_dropout_prob, training=self.training)


@dataclass
class Padding:
    """Key padding, prepared once per forward for whichever kernel runs."""

    key_mask: torch.Tensor | None  # (B, 1, 1, L) bool, True = attend; None = no padding
    # For flash-attn's varlen kernel: indices of real tokens, cumulative lengths, longest length.
    indices: torch.Tensor | None = None
    cu_seqlens: torch.Tensor | None = None
    max_seqlen: int = 0

    @classmethod
    def from_mask(cls, attention_mask: torch.Tensor | None, backend: str) -> "Padding":
        if attention_mask is None:
            return cls(key_mask=None)
        mask = attention_mask.to(torch.bool)
        if bool(mask.all()):
            return cls(key_mask=None)
        if backend in ("flash_attn", "flash_attn_4"):
            lengths = mask.sum(dim=1, dtype=torch.int32)
            cu = F.pad(torch.cumsum(lengths, 0, dtype=torch.int32), (1, 0))
            indices = torch.nonzero(mask.flatten(), as_tuple=False).flatten()
            return cls(key_mask=mask[:, None, None, :], indices=indices, cu_seqlens=cu, max_seqlen=int(lengths.max()))
        return cls(key_mask=mask[:, None, None, :])


def flash_kernel_applies(backend: str, q: torch.Tensor, dropout: float) -> bool:
    """Whether a flash-attn package kernel takes these inputs; otherwise _attend falls back to SDPA.

    Both need CUDA and half precision. FlashAttention-4 (CuTe) has no dropout and wants head
    dims divisible by 8 up to 256 (it pads 136 to 144 internally on Hopper).
    """
    if not q.is_cuda or q.dtype not in (torch.float16, torch.bfloat16):
        return False
    if backend == "flash_attn":
        return HAVE_FLASH_ATTN
    if backend == "flash_attn_4":
        head_dim = q.shape[-1]
        return HAVE_FLASH_ATTN_4 and dropout == 0.0 and head_dim % 8 == 0 and head_dim <= 256
    return False


def _flash_attend(q, k, v, padding: Padding, backend: str, dropout: float) -> torch.Tensor:
    """The flash-attn packages' kernels; padded batches go through their varlen (unpadded) form."""
    if backend == "flash_attn":
        dense, varlen, extra = flash_attn_func, flash_attn_varlen_func, {"dropout_p": dropout}
    else:
        dense, varlen, extra = fa4_func, fa4_varlen_func, {}
    if padding.key_mask is None:
        return _first(dense(q, k, v, **extra))
    batch, length, heads, dim = q.shape
    idx = padding.indices
    packed = [t.reshape(batch * length, heads, dim).index_select(0, idx) for t in (q, k, v)]
    # By keyword: the FlashAttention-2 and -4 varlen functions agree on these names, not on positions.
    out = _first(
        varlen(
            *packed,
            cu_seqlens_q=padding.cu_seqlens,
            cu_seqlens_k=padding.cu_seqlens,
            max_seqlen_q=padding.max_seqlen,
            max_seqlen_k=padding.max_seqlen,
            **extra,
        )
    )
    full = out.new_zeros(batch * length, heads, dim)
    full.index_copy_(0, idx, out)
    return full.view(batch, length, heads, dim)


def _first(result):
    """FlashAttention-4 returns (out, lse); FlashAttention-2 returns out."""
    return result[0] if isinstance(result, tuple) else result


def _attend(q, k, v, padding: Padding, backend: str, dropout: float) -> torch.Tensor:
    """Inputs (B, L, H, D); output (B, L, H, D)."""
    if flash_kernel_applies(backend, q, dropout):
        return _flash_attend(q, k, v, padding, backend, dropout)
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, L, D)
    if backend == "eager":
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        if padding.key_mask is not None:
            scores = scores.masked_fill(~padding.key_mask, torch.finfo(scores.dtype).min)
        probs = F.dropout(scores.softmax(dim=-1), p=dropout)
        out = probs @ v
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=padding.key_mask, dropout_p=dropout)
    return out.transpose(1, 2)


# --------------------------------------------------------------------------- MLP and block


# the checkpoint's module names and shapes, spelled out per module on purpose (the layers differ)
class SwiGLU(nn.Module):
    """``down(silu(gate(x)) * up(x))``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        bias = config.add_linear_bias
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=bias)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=bias)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    """``h = x + Attn(LN(x)); out = h + MLP(LN(h))``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.attention = Attention(config)
        self.ln = _norm(config)
        self.mlp = SwiGLU(config)
        self.dropout_p = config.hidden_dropout_prob

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], padding: Padding) -> torch.Tensor:
        h = self.attention(x, rope, padding)
        return h + F.dropout(self.mlp(self.ln(h)), p=self.dropout_p, training=self.training)


# --------------------------------------------------------------------------- encoder


# the same layout as tests/support/reference_rnabert.py on purpose: both carry the published checkpoint's key names
class Embeddings(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)


class Encoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.layer = nn.ModuleList(Block(config) for _ in range(config.num_hidden_layers))
        self.ln = _norm(config)  # final LayerNorm


class Backbone(nn.Module):
    """Embeddings + blocks + final norm (``bert.*`` in the checkpoint)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        cfg = self.config
        x = self.embeddings.word_embeddings(input_ids)
        x = F.dropout(x, p=cfg.hidden_dropout_prob, training=self.training)
        rope = rotary_cos_sin(input_ids.shape[1], cfg.rotary_dim, cfg.rotary_base, x.device, x.dtype)
        padding = Padding.from_mask(attention_mask, cfg.attn_backend)
        hidden_states: list[torch.Tensor] = []
        for block in self.encoder.layer:
            if output_hidden_states:
                hidden_states.append(x)
            x = block(x, rope, padding)
        x = self.encoder.ln(x)
        if output_hidden_states:
            hidden_states.append(x)
        return x, (tuple(hidden_states) if output_hidden_states else None)


# --------------------------------------------------------------------------- MLM head


class HeadTransform(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)  # always biased, as published
        self.LayerNorm = _norm(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(F.gelu(self.dense(x)))  # exact (erf) GELU


class Predictions(nn.Module):
    """dense → GELU → LN → decoder tied to the word embeddings, plus ``bias``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.transform = HeadTransform(config)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, x: torch.Tensor, decoder_weight: torch.Tensor) -> torch.Tensor:
        # The decoder matrix is passed in rather than stored: it *is* the word-embedding matrix,
        # one tensor for the state dict, the optimiser and FSDP (which swaps parameters in place).
        return F.linear(self.transform(x), decoder_weight, self.bias)


class MLMHead(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.predictions = Predictions(config)


@dataclass
class ModelOutput:
    logits: torch.Tensor | None  # (B, L, vocab)
    last_hidden_state: torch.Tensor  # (B, L, H), after the final norm
    hidden_states: tuple[torch.Tensor, ...] | None = None  # input of each block, then the final output


class DnaFmForMaskedLM(nn.Module):
    """``model(input_ids, attention_mask=None)`` → ``ModelOutput(.logits, .last_hidden_state)``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.bert = Backbone(config)
        self.cls = MLMHead(config)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """BERT initialisation: N(0, initializer_range) matrices, zero biases, unit norms."""
        std = self.config.initializer_range
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                module.weight.normal_(0.0, std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.zero_()
            if isinstance(module, (nn.LayerNorm, nn.RMSNorm)):
                module.reset_parameters()
        self.cls.predictions.bias.zero_()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        return_logits: bool = True,
    ) -> ModelOutput:
        hidden, all_hidden = self.bert(input_ids, attention_mask, output_hidden_states)
        logits = None
        if return_logits:
            logits = self.cls.predictions(hidden, self.bert.embeddings.word_embeddings.weight)
        return ModelOutput(logits=logits, last_hidden_state=hidden, hidden_states=all_hidden)

    @property
    def blocks(self) -> nn.ModuleList:
        return self.bert.encoder.layer

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def set_attention_backend(self, backend: str) -> None:
        if backend not in ATTENTION_BACKENDS:
            raise ValueError(f"attn_backend must be one of {ATTENTION_BACKENDS}, got {backend!r}")
        package, installed = BACKEND_PACKAGES.get(backend, ("", True))
        if not installed:
            raise RuntimeError(f"attn_backend {backend!r} needs the {package} package (pip install {package})")
        self.config.attn_backend = backend


def build_model(config: ModelConfig, device: str | torch.device | None = None) -> DnaFmForMaskedLM:
    """Build (and initialise, unless on the meta device) a model."""
    with torch.device(device or "cpu"):
        return DnaFmForMaskedLM(config)


def flops_per_token(config: ModelConfig, seq_len: int, training: bool = True, n_params: int | None = None) -> float:
    """6N + 12·L·h·S for a training token (2N + 4·L·h·S for a forward-only token)."""
    n = n_params if n_params is not None else count_parameters(config)
    attention = config.num_hidden_layers * config.hidden_size * seq_len
    return 6 * n + 12 * attention if training else 2 * n + 4 * attention


def count_parameters(config: ModelConfig) -> int:
    return build_model(config, device="meta").num_parameters()
