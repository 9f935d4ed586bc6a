"""Task models: the model card's snippets, output shapes, one training step, strategies, persistence."""

import contextlib
import io
import math

import numpy as np
import pytest
import torch

import dnafm_lib
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.finetune import (
    Embed,
    SequenceClassification,
    SequenceRegression,
    TokenClassification,
    load_task,
)
from dnafm_lib.finetune.metrics import classification_metrics, regression_metrics

TINY_HIDDEN = 128

CARD_SNIPPETS = {
    "Embed": """
from dnafm_lib.finetune import Embed
model = Embed.from_config({"model.backbone": "tiny"}).eval()
collated = model.collate({"sequences": ["ACGT", "ACGT"]})
embedding = model(collated)
print(embedding.shape)
print(embedding)
""",
    "SequenceClassification": """
from dnafm_lib.finetune import SequenceClassification
model = SequenceClassification.from_config({"model.backbone": "tiny", "model.n_classes": 2}).eval()
collated = model.collate({"sequences": ["ACGT", "ACGT"]})
logits = model(collated)
print(logits.shape)
print(logits)
print(torch.argmax(logits, dim=-1))
""",
    "TokenClassification": """
from dnafm_lib.finetune import TokenClassification
model = TokenClassification.from_config({"model.backbone": "tiny", "model.n_classes": 3}).eval()
collated = model.collate({"sequences": ["ACGT", "AGCT"]})
logits = model(collated)
print(logits.shape)
print(logits)
print(torch.argmax(logits, dim=-1))
""",
    "SequenceRegression": """
from dnafm_lib.finetune import SequenceRegression
model = SequenceRegression.from_config({"model.backbone": "tiny"}).eval()
collated = model.collate({"sequences": ["ACGT", "AGCT"]})
logits = model(collated)
print(logits.shape)
print(logits)
""",
}
# The shape each snippet prints first: [CLS] + 4 bases + [EOS] = 6 tokens.
CARD_SHAPES = {
    "Embed": "torch.Size([2, 6, 128])",
    "SequenceClassification": "torch.Size([2, 2])",
    "TokenClassification": "torch.Size([2, 6, 3])",
    "SequenceRegression": "torch.Size([2, 1])",
}


@pytest.mark.parametrize("task", list(CARD_SNIPPETS))
def test_model_card_snippet_runs_as_written(task):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(CARD_SNIPPETS[task], {"torch": torch})
    lines = printed.getvalue().splitlines()
    assert lines[0] == CARD_SHAPES[task]
    assert "tensor(" in printed.getvalue()


SEQUENCES = ["ACGTACGTAC", "GGCCA", "TTTTAAAACCCCGGGG"]


@pytest.mark.parametrize(
    "task_class, options, expected",
    [
        (Embed, {}, lambda b, length: (b, length, TINY_HIDDEN)),
        (SequenceClassification, {"model.n_classes": 4}, lambda b, length: (b, 4)),
        (TokenClassification, {"model.n_classes": 3}, lambda b, length: (b, length, 3)),
        (SequenceRegression, {"model.n_outputs": 2}, lambda b, length: (b, 2)),
    ],
)
def test_each_task_returns_its_documented_shape_on_a_padded_batch(task_class, options, expected):
    model = task_class.from_config({"model.backbone": "tiny", **options}).eval()
    collated = model.collate({"sequences": SEQUENCES})
    longest = max(map(len, SEQUENCES)) + 2
    with torch.no_grad():
        out = model(collated)
    assert tuple(out.shape) == expected(len(SEQUENCES), longest)
    assert torch.isfinite(out).all()


def _toy_batch(task_class):
    sequences = ["AAAATTTTAAAATTTT", "GGGGCCCCGGGGCCCC", "ATATATATATATAT", "GCGCGCGCGCGCGC"]
    if task_class is SequenceClassification:
        labels = [0, 1, 0, 1]
    elif task_class is SequenceRegression:
        labels = [[0.0], [1.0], [0.0], [1.0]]
    else:  # per base: 1 on G/C
        labels = [[int(b in "GC") for b in s] for s in sequences]
    return {"sequences": sequences, "labels": labels}


@pytest.mark.parametrize("task_class", [SequenceClassification, TokenClassification, SequenceRegression])
@pytest.mark.parametrize("strategy", ["full", "frozen", "lora"])
def test_one_training_step_reduces_the_loss_on_a_toy_batch(task_class, strategy):
    torch.manual_seed(0)
    model = task_class.from_config({"model.backbone": "tiny", "model.n_classes": 2, "model.strategy": strategy})
    collated = model.collate(_toy_batch(task_class))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)  # Adam's first step moves every weight by ~lr
    before = model.loss(collated, model(collated))
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = model.loss(collated, model(collated))
    assert after.item() < before.item()


def test_frozen_strategy_updates_only_the_head():
    torch.manual_seed(0)
    model = SequenceClassification.from_config({"model.backbone": "tiny", "model.strategy": "frozen"})
    backbone_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head_before = {k: v.clone() for k, v in model.head.state_dict().items()}
    collated = model.collate(_toy_batch(SequenceClassification))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.loss(collated, model(collated)).backward()
    optimizer.step()
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in backbone_before.items())
    assert any(not torch.equal(v, model.head.state_dict()[k]) for k, v in head_before.items())


def test_lora_strategy_trains_adapters_and_keeps_the_base_weights():
    torch.manual_seed(0)
    model = SequenceClassification.from_config({"model.backbone": "tiny", "model.strategy": "lora", "model.lora_r": 4})
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable) and any("lora_B" in n for n in trainable)
    assert all("lora_" in n or n.startswith("head.") for n in trainable)
    base = {n: p.clone() for n, p in model.backbone.named_parameters() if "lora_" not in n}
    collated = model.collate(_toy_batch(SequenceClassification))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.loss(collated, model(collated)).backward()
    optimizer.step()
    assert all(torch.equal(p, dict(model.backbone.named_parameters())[n]) for n, p in base.items())


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_a_sequence_scores_the_same_alone_and_padded_in_a_batch(pooling):
    model = SequenceClassification.from_config({"model.backbone": "tiny", "model.pooling": pooling}).eval()
    with torch.no_grad():
        alone = model(model.collate({"sequences": ["GGCCA"]}))
        batched = model(model.collate({"sequences": ["GGCCA", "ACGTACGTACGTACGTACGT"]}))
    torch.testing.assert_close(alone[0], batched[0], atol=1e-5, rtol=1e-4)


def test_mean_pooling_averages_the_bases_only():
    model = SequenceClassification.from_config({"model.backbone": "tiny", "model.pooling": "mean"}).eval()
    collated = model.collate({"sequences": ["ACG", "ACGTT"]})
    with torch.no_grad():
        hidden = model.encode(collated)
        pooled = model.pool(hidden, collated["attention_mask"])
    torch.testing.assert_close(pooled[0], hidden[0, 1:4].mean(dim=0))
    torch.testing.assert_close(pooled[1], hidden[1, 1:6].mean(dim=0))


def test_backbone_loads_from_a_checkpoint_directory_and_scratch_keeps_only_its_shape(tmp_path):
    torch.manual_seed(1)
    pretrained = dnafm_lib.load_model("tiny")
    dnafm_lib.save_model(pretrained, tmp_path / "ckpt")
    reference = pretrained.bert.embeddings.word_embeddings.weight
    loaded = Embed.from_config({"model.backbone": str(tmp_path / "ckpt")})
    scratch = Embed.from_config({"model.backbone": str(tmp_path / "ckpt"), "model.pretrained": False})
    torch.testing.assert_close(loaded.backbone.embeddings.word_embeddings.weight, reference)
    fresh = scratch.backbone.embeddings.word_embeddings.weight
    assert fresh.shape == reference.shape and not torch.allclose(fresh, reference)


@pytest.mark.parametrize("strategy", ["full", "lora"])
def test_a_saved_task_model_reloads_with_identical_outputs(tmp_path, strategy):
    torch.manual_seed(2)
    model = TokenClassification.from_config(
        {"model.backbone": "tiny", "model.n_classes": 3, "model.strategy": strategy}
    )
    with torch.no_grad():  # move the LoRA B matrices off zero so the adapters matter
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_()
    model.eval().save(tmp_path / "task")
    assert sorted(p.name for p in (tmp_path / "task").iterdir()) == [
        ".dnafm-output.json",
        "model.safetensors",
        "task.json",
    ]
    restored = load_task(tmp_path / "task").eval()
    collated = model.collate({"sequences": SEQUENCES})
    with torch.no_grad():
        torch.testing.assert_close(restored(collated), model(collated))


def test_unknown_option_is_one_error_naming_the_key_and_the_known_ones():
    with pytest.raises(DnafmError, match=r"unknown setting model\.n_clases; known: .*model\.n_classes"):
        SequenceClassification.from_config({"model.backbone": "tiny", "model.n_clases": 2})


def test_option_of_the_wrong_type_is_one_error_naming_the_key():
    with pytest.raises(DnafmError, match=r"model\.n_classes must be an integer, got '2' \(str\)"):
        SequenceClassification.from_config({"model.backbone": "tiny", "model.n_classes": "2"})


def test_missing_backbone_and_unknown_preset_are_clear_errors():
    with pytest.raises(DnafmError, match="model.backbone is required"):
        Embed.from_config({})
    with pytest.raises(DnafmError, match="model.backbone 'huge'"):
        Embed.from_config({"model.backbone": "huge"})


def test_token_labels_must_cover_every_base():
    model = TokenClassification.from_config({"model.backbone": "tiny", "model.n_classes": 3})
    with pytest.raises(DnafmError, match="sequence 1 has 3 bases but 2 labels"):
        model.collate({"sequences": ["ACGT", "ACG"], "labels": [[0, 1, 2, 0], [0, 1]]})


def test_classification_metrics_on_known_predictions():
    labels = np.array([0, 0, 1, 1, 1, 0])
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    metrics = classification_metrics(labels, probabilities)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["f1"] == pytest.approx(2 / 3)  # precision 2/3, recall 2/3
    assert metrics["mcc"] == pytest.approx(1 / 3)
    assert metrics["auroc"] == pytest.approx(7 / 9)
    assert math.isnan(classification_metrics(np.array([1, 1]), np.array([[0.2, 0.8], [0.4, 0.6]]))["auroc"])


def test_regression_metrics_on_known_predictions():
    targets = np.array([[1.0], [2.0], [3.0], [4.0]])
    metrics = regression_metrics(targets, np.array([[2.0], [4.0], [6.0], [9.0]]))
    assert metrics["mse"] == pytest.approx((1 + 4 + 9 + 25) / 4)
    assert metrics["spearman"] == pytest.approx(1.0)
    assert 0.98 < metrics["pearson"] < 1.0
