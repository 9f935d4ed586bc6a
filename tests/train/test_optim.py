"""AdamW groups and the learning-rate schedule."""

import math

import pytest

from dnafm_lib.model.encoder import build_model, preset_config
from dnafm_lib.train.config import TrainConfig
from dnafm_lib.train.optim import learning_rate_at, parameter_groups


def test_weight_decay_applies_to_matrices_but_not_to_biases_or_norms():
    model = build_model(preset_config("tiny"))
    decay, no_decay = parameter_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    exempt = {names[id(p)] for p in no_decay["params"]}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert "bert.embeddings.word_embeddings.weight" in decayed
    assert "bert.encoder.layer.0.mlp.gate_proj.weight" in decayed
    assert "bert.encoder.layer.0.mlp.gate_proj.bias" in exempt
    assert "bert.encoder.layer.0.attention.ln.weight" in exempt
    assert "cls.predictions.transform.LayerNorm.weight" in exempt
    assert decayed.isdisjoint(exempt) and len(decayed) + len(exempt) == len(names)


def test_schedule_warms_up_linearly_then_decays_by_cosine_to_the_floor():
    config = TrainConfig.from_mapping(
        {"learning_rate": 1e-3, "min_learning_rate": 1e-4, "warmup_steps": 10, "max_steps": 110}
    )
    assert learning_rate_at(0, config) == pytest.approx(1e-4)
    assert learning_rate_at(4, config) == pytest.approx(5e-4)
    assert learning_rate_at(9, config) == pytest.approx(1e-3)
    assert learning_rate_at(10, config) == pytest.approx(1e-3)
    assert learning_rate_at(60, config) == pytest.approx(1e-4 + 0.5 * 9e-4)  # half way: the mean
    assert learning_rate_at(110, config) == pytest.approx(1e-4)
    rates = [learning_rate_at(s, config) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    assert not any(math.isnan(r) for r in rates)
