"""Activation checkpointing is applied to the model from outside it, and changes no number."""

import torch

from dnafm_lib.model.encoder import build_model, preset_config
from dnafm_lib.model.tokenizer import encode_batch
from dnafm_lib.train.parallelize import apply_activation_checkpointing


def _gradients(model, ids):
    model.zero_grad()
    model(ids).logits.logsumexp(-1).mean().backward()
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def test_activation_checkpointing_gives_the_same_gradients_and_parameter_names():
    torch.manual_seed(0)
    config = preset_config("tiny", num_hidden_layers=2)
    plain = build_model(config).train()
    checkpointed = build_model(config).train()
    checkpointed.load_state_dict(plain.state_dict())
    ids = torch.tensor(encode_batch(["ACGTTGCAAGCTTAGC", "ACGGTAC"])[0])

    apply_activation_checkpointing(checkpointed)

    assert type(checkpointed.blocks[0]).__name__ == "CheckpointWrapper"
    assert checkpointed.state_dict().keys() == plain.state_dict().keys()  # checkpoints load either way
    expected, got = _gradients(plain, ids), _gradients(checkpointed, ids)
    got = {name.replace("_checkpoint_wrapped_module.", ""): grad for name, grad in got.items()}
    assert got.keys() == expected.keys()
    assert all(torch.allclose(expected[name], got[name], atol=1e-6) for name in expected)
