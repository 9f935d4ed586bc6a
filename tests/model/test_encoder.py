import dataclasses

import pytest
import torch

from dnafm_lib.model.encoder import (
    PRESETS,
    apply_rotary,
    build_model,
    count_parameters,
    flops_per_token,
    preset_config,
    rotary_cos_sin,
    swiglu_intermediate_size,
)
from dnafm_lib.model.tokenizer import encode_batch


def small_config(**overrides):
    return dataclasses.replace(preset_config("tiny"), **overrides)


def test_rope_matches_the_complex_rotation_formula():
    dim, length, base = 16, 9, 10000.0
    x = torch.randn(length, dim, dtype=torch.float64)
    cos, sin = rotary_cos_sin(length, dim, base, None, torch.float64)
    rotated = apply_rotary(x, cos, sin)
    half = dim // 2
    theta = base ** (-torch.arange(half, dtype=torch.float64) * 2 / dim)
    angle = torch.arange(length, dtype=torch.float64)[:, None] * theta[None, :]
    z = torch.complex(x[:, :half], x[:, half:]) * torch.exp(1j * angle)
    assert torch.allclose(rotated, torch.cat((z.real, z.imag), dim=-1), atol=1e-12)


def test_rope_scores_depend_only_on_relative_position():
    dim = 32
    cos, sin = rotary_cos_sin(64, dim, 10000.0, None, torch.float64)
    q, k = torch.randn(dim, dtype=torch.float64), torch.randn(dim, dtype=torch.float64)

    def score(m, n):
        return float(apply_rotary(q, cos[m], sin[m]) @ apply_rotary(k, cos[n], sin[n]))

    # angles are computed in float32, as in the published model: agreement to ~1e-7 relative
    assert score(5, 2) == pytest.approx(score(40, 37), rel=1e-5)
    assert score(5, 2) != pytest.approx(score(5, 3), abs=1e-6)


def test_partial_rotary_leaves_the_remaining_channels_untouched():
    x = torch.randn(3, 8, 32)
    cos, sin = rotary_cos_sin(8, 16, 10000.0, None, torch.float32)
    out = apply_rotary(x, cos, sin)
    assert torch.equal(out[..., 16:], x[..., 16:])
    assert not torch.allclose(out[..., 1:, :16], x[..., 1:, :16])


@pytest.mark.parametrize("backend", ["sdpa", "eager"])
def test_a_sequence_alone_and_padded_in_a_batch_gives_the_same_logits(backend):
    torch.manual_seed(0)
    model = build_model(small_config(attn_backend=backend)).eval()
    seqs = ["ACGTACGTTTGACNNACGT", "GGCA", "ACGTTGCA"]
    ids, mask = encode_batch(seqs)
    with torch.no_grad():
        batch = model(torch.tensor(ids), torch.tensor(mask)).logits
        for row, seq in enumerate(seqs):
            alone_ids, _ = encode_batch([seq])
            alone = model(torch.tensor(alone_ids)).logits[0]
            assert torch.allclose(batch[row, : alone.shape[0]], alone, atol=1e-5), seq


def test_sdpa_and_eager_attention_agree():
    torch.manual_seed(0)
    model = build_model(small_config()).eval()
    ids, mask = encode_batch(["ACGTACGTTTGAC", "GGCA"])
    ids, mask = torch.tensor(ids), torch.tensor(mask)
    with torch.no_grad():
        sdpa = model(ids, mask).logits
        model.set_attention_backend("eager")
        eager = model(ids, mask).logits
    assert torch.allclose(sdpa[mask], eager[mask], atol=1e-5)


def test_mlm_decoder_is_tied_to_the_word_embeddings():
    torch.manual_seed(0)
    model = build_model(small_config()).eval()
    ids = torch.tensor(encode_batch(["ACGTAC"])[0])
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight[5] += 1.0  # token A
        hidden = model(ids).last_hidden_state
        transformed = model.cls.predictions.transform(hidden)
        logits = model(ids).logits
    expected = transformed @ model.bert.embeddings.word_embeddings.weight.T + model.cls.predictions.bias
    assert torch.allclose(logits, expected, atol=1e-5)
    # one tensor, not two: an optimiser step on the embedding moves the decoder too
    assert sum(p.shape == (16, 128) for p in model.parameters()) == 1


def test_state_dict_keys_follow_the_aido_dna_layout():
    model = build_model(small_config(), device="meta")
    keys = set(model.state_dict())
    layer = {
        f"bert.encoder.layer.0.{k}"
        for k in [
            "attention.ln.weight",
            "attention.ln.bias",
            "attention.self.query.weight",
            "attention.self.query.bias",
            "attention.self.key.weight",
            "attention.self.key.bias",
            "attention.self.value.weight",
            "attention.self.value.bias",
            "attention.output.dense.weight",
            "attention.output.dense.bias",
            "ln.weight",
            "ln.bias",
            "mlp.gate_proj.weight",
            "mlp.gate_proj.bias",
            "mlp.up_proj.weight",
            "mlp.up_proj.bias",
            "mlp.down_proj.weight",
            "mlp.down_proj.bias",
        ]
    }
    top = {
        "bert.embeddings.word_embeddings.weight",
        "bert.encoder.ln.weight",
        "bert.encoder.ln.bias",
        "cls.predictions.bias",
        "cls.predictions.transform.dense.weight",
        "cls.predictions.transform.dense.bias",
        "cls.predictions.transform.LayerNorm.weight",
        "cls.predictions.transform.LayerNorm.bias",
    }
    layer1 = {k.replace("layer.0.", "layer.1.") for k in layer}
    assert keys == top | layer | layer1


def test_no_linear_bias_drops_block_biases_but_keeps_the_head_dense_bias():
    keys = set(build_model(small_config(add_linear_bias=False), device="meta").state_dict())
    assert "bert.encoder.layer.0.attention.self.query.bias" not in keys
    assert "bert.encoder.layer.0.mlp.down_proj.bias" not in keys
    assert "cls.predictions.transform.dense.bias" in keys


def test_presets_have_the_published_geometry_and_7b_has_about_7_28e9_parameters():
    assert swiglu_intermediate_size(4352) == 11584 and swiglu_intermediate_size(1024) == 2688
    big = PRESETS["7b"]
    assert (big.hidden_size, big.num_hidden_layers, big.num_attention_heads, big.head_dim) == (4352, 32, 32, 136)
    n = count_parameters(big)
    assert n == 7_285_036_304
    assert 0.29e9 < count_parameters(PRESETS["300m"]) < 0.31e9


def test_meta_device_build_allocates_nothing_and_reports_the_count():
    model = build_model(PRESETS["7b"], device="meta")
    assert all(p.is_meta for p in model.parameters())
    assert model.num_parameters() == 7_285_036_304


def test_flops_per_token_follows_6n_plus_12_lhs():
    cfg = PRESETS["7b"]
    n = count_parameters(cfg)
    assert flops_per_token(cfg, 4000) == 6 * n + 12 * 32 * 4352 * 4000
    assert flops_per_token(cfg, 4000, training=False) == 2 * n + 4 * 32 * 4352 * 4000


def test_bf16_logits_agree_with_fp32_on_cpu():
    torch.manual_seed(0)
    model = build_model(small_config()).eval()
    ids, mask = encode_batch(["ACGTTGCAAGCTTAGC" * 8, "ACGGT" * 5])
    ids, mask = torch.tensor(ids), torch.tensor(mask)
    with torch.no_grad():
        full = model(ids, mask).logits
        half = model.to(torch.bfloat16)(ids, mask).logits.float()
    # bf16 keeps 8 mantissa bits: logits within 5% of the fp32 logits' scale, and the same argmax
    scale = full[mask].abs().max()
    assert (half[mask] - full[mask]).abs().max() < 0.05 * scale
    assert (half[mask].argmax(-1) == full[mask].argmax(-1)).float().mean() > 0.95


def test_hidden_states_are_block_inputs_then_the_final_output():
    torch.manual_seed(0)
    model = build_model(small_config()).eval()
    ids = torch.tensor(encode_batch(["ACGTTG"])[0])
    with torch.no_grad():
        out = model(ids, output_hidden_states=True)
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state)
    assert torch.equal(out.hidden_states[0], model.bert.embeddings.word_embeddings(ids))


def test_unknown_preset_and_bad_geometry_are_clear_errors():
    with pytest.raises(KeyError, match="unknown model preset 'huge'"):
        preset_config("huge")
    with pytest.raises(ValueError, match="not divisible"):
        small_config(num_attention_heads=3)
