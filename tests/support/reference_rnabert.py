"""An independent, deliberately naive re-statement of the AIDO.DNA ("rnabert") MLM model.

It mirrors the structure of the reference Hugging Face implementation, so its state dict
carries the published key names: explicit softmax attention with the 2-D [b, s, s] padding
mask (padded queries *and* keys masked), RoPE applied in (seq, batch, head, dim) layout,
attention scores divided by sqrt(head_dim), no embedding LayerNorm, pre-LN blocks, a final
LayerNorm, and an MLM head whose dense layer always has a bias. Used only to check that
dnafm's model reproduces those numbers.
"""

from __future__ import annotations

import json
import math

import torch
from torch import nn


class RefConfig:
    def __init__(self, **kw):
        self.vocab_size = kw.get("vocab_size", 16)
        self.hidden_size = kw["hidden_size"]
        self.num_hidden_layers = kw["num_hidden_layers"]
        self.num_attention_heads = kw["num_attention_heads"]
        self.intermediate_size = kw["intermediate_size"]
        self.layer_norm_eps = kw.get("layer_norm_eps", 1e-5)
        self.add_linear_bias = kw.get("add_linear_bias", True)
        self.rotary_percent = kw.get("rotary_percent", 1.0)
        self.max_position_embeddings = kw.get("max_position_embeddings", 4000)
        self.pad_token_id = kw.get("pad_token_id", 0)

    def to_hf_json(self) -> dict:
        """config.json as Hugging Face writes it, extra fields included."""
        return {
            "_name_or_path": "genbio-ai/AIDO.DNA-test",
            "architectures": ["RNABertForMaskedLM"],
            "attention_probs_dropout_prob": 0.0,
            "add_linear_bias": self.add_linear_bias,
            "hidden_act": "swiglu",
            "hidden_dropout_prob": 0.0,
            "hidden_size": self.hidden_size,
            "initializer_range": 0.02,
            "intermediate_size": self.intermediate_size,
            "layer_norm_eps": self.layer_norm_eps,
            "max_position_embeddings": self.max_position_embeddings,
            "model_type": "rnabert",
            "normalization_type": "LayerNorm",
            "num_attention_heads": self.num_attention_heads,
            "num_hidden_layers": self.num_hidden_layers,
            "pad_token_id": self.pad_token_id,
            "position_embedding_type": "rope",
            "rotary_percent": self.rotary_percent,
            "torch_dtype": "float32",
            "transformers_version": "4.44.2",
            "type_vocab_size": 2,
            "use_cache": True,
            "vocab_size": self.vocab_size,
        }


def _rotate(t: torch.Tensor) -> torch.Tensor:
    half = t.shape[-1] // 2
    return torch.cat((-t[..., half:], t[..., :half]), dim=-1)


class RefSelf(nn.Module):
    def __init__(self, c: RefConfig):
        super().__init__()
        self.heads = c.num_attention_heads
        self.head_size = c.hidden_size // c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size, bias=c.add_linear_bias)
        self.key = nn.Linear(c.hidden_size, c.hidden_size, bias=c.add_linear_bias)
        self.value = nn.Linear(c.hidden_size, c.hidden_size, bias=c.add_linear_bias)

    def split(self, x):  # [b, s, h] -> [b, hn, s, c]
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_size).permute(0, 2, 1, 3)

    def forward(self, x, ext_mask, freqs):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        rot = freqs.shape[-1]
        out = []
        for t in (q, k):
            t = t.permute(2, 0, 1, 3)  # [s, b, hn, c]
            t_rot, t_pass = t[..., :rot], t[..., rot:]
            t_rot = t_rot * torch.cos(freqs) + _rotate(t_rot) * torch.sin(freqs)
            out.append(torch.cat((t_rot, t_pass), dim=-1).permute(1, 2, 0, 3))
        q, k = out
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_size)
        scores = scores + ext_mask
        probs = torch.softmax(scores, dim=-1).masked_fill(ext_mask < -1e-5, 0.0)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.shape[0], ctx.shape[1], -1)


class RefDense(nn.Module):
    def __init__(self, c: RefConfig):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size, bias=c.add_linear_bias)


class RefAttention(nn.Module):
    def __init__(self, c: RefConfig):
        super().__init__()
        self.ln = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.self = RefSelf(c)
        self.output = RefDense(c)

    def forward(self, x, ext_mask, freqs):
        return x + self.output.dense(self.self(self.ln(x), ext_mask, freqs))


class RefMLP(nn.Module):
    def __init__(self, c: RefConfig):
        super().__init__()
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=c.add_linear_bias)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=c.add_linear_bias)
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=c.add_linear_bias)

    def forward(self, x):
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class RefLayer(nn.Module):
    def __init__(self, c: RefConfig):
        super().__init__()
        self.attention = RefAttention(c)
        self.ln = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.mlp = RefMLP(c)

    def forward(self, x, ext_mask, freqs):
        h = self.attention(x, ext_mask, freqs)
        return h + self.mlp(self.ln(h))


class RefEmbeddings(nn.Module):
    def __init__(self, c: RefConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)


class RefEncoder(nn.Module):
    def __init__(self, c: RefConfig):
        super().__init__()
        self.layer = nn.ModuleList(RefLayer(c) for _ in range(c.num_hidden_layers))
        self.ln = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)


class RefBert(nn.Module):
    def __init__(self, c: RefConfig):
        super().__init__()
        self.c = c
        self.embeddings = RefEmbeddings(c)
        self.encoder = RefEncoder(c)

    def forward(self, input_ids, attention_mask):
        c = self.c
        rot = c.hidden_size // c.num_attention_heads
        if c.rotary_percent < 1.0:
            rot = int(rot * c.rotary_percent)
        inv_freq = 1.0 / (10000 ** (torch.arange(0, rot, 2, dtype=torch.float32) / rot))
        freqs = torch.outer(torch.arange(input_ids.shape[1], dtype=torch.float32), inv_freq)
        freqs = torch.cat((freqs, freqs), dim=-1)[:, None, None, :]
        m = attention_mask.float()
        ext = ((m[:, None, :] * m[:, :, None])[:, None] < 0.5).float() * torch.finfo(torch.float).min
        x = self.embeddings.word_embeddings(input_ids)
        for layer in self.encoder.layer:
            x = layer(x, ext, freqs)
        return self.encoder.ln(x)


class RefTransform(nn.Module):
    def __init__(self, c: RefConfig):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)


class RefPredictions(nn.Module):
    def __init__(self, c: RefConfig):
        super().__init__()
        self.transform = RefTransform(c)
        self.decoder = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(c.vocab_size))
        self.decoder.bias = self.bias


class RefCls(nn.Module):
    def __init__(self, c: RefConfig):
        super().__init__()
        self.predictions = RefPredictions(c)


class RefForMaskedLM(nn.Module):
    def __init__(self, c: RefConfig):
        super().__init__()
        self.bert = RefBert(c)
        self.cls = RefCls(c)
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight
        for p in self.parameters():  # random everything, biases and norms included
            nn.init.normal_(p, std=0.3)

    def forward(self, input_ids, attention_mask):
        h = self.bert(input_ids, attention_mask)
        t = self.cls.predictions.transform
        h = t.LayerNorm(nn.functional.gelu(t.dense(h)))
        return self.cls.predictions.decoder(h)


def write_hf_checkpoint(model: RefForMaskedLM, directory, fmt: str = "safetensors") -> None:
    """Write the files as Hugging Face would: tied decoder keys dropped for safetensors."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(model.bert.c.to_hf_json(), indent=2))
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    if fmt == "safetensors":
        state = {k: v for k, v in state.items() if not k.startswith("cls.predictions.decoder.")}
        save_file(state, directory / "model.safetensors", metadata={"format": "pt"})
    elif fmt == "bin":  # keeps the tied copies, as torch.save of a state dict does
        torch.save(state, directory / "pytorch_model.bin")
    else:
        raise ValueError(fmt)
