import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

from dnafm_lib import load_model, save_model
from dnafm_lib.model.model_dir import CheckpointError
from dnafm_lib.model.tokenizer import encode_batch
from tests.support.reference_rnabert import RefConfig, RefForMaskedLM, write_hf_checkpoint

SEQS = ["ACGTTGCAAGCTTAGCNNACGTAGGCTAGCTAGGATCGA", "GGCATTAC", "ACGTTGCAAGCTTAGC"]


def reference_model(add_linear_bias: bool, seed: int = 0) -> RefForMaskedLM:
    torch.manual_seed(seed)
    config = RefConfig(
        hidden_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=256,
        add_linear_bias=add_linear_bias,
    )
    return RefForMaskedLM(config).eval()


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return float((ours - reference).norm() / reference.norm())


@pytest.mark.parametrize("add_linear_bias", [True, False])
@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_reference_checkpoint_loads_and_gives_the_same_mlm_logits_on_padded_batches(tmp_path, add_linear_bias, fmt):
    reference = reference_model(add_linear_bias)
    write_hf_checkpoint(reference, tmp_path / "ckpt", fmt=fmt)
    ours = load_model(tmp_path / "ckpt")
    ids, mask = encode_batch(SEQS)
    ids, mask = torch.tensor(ids), torch.tensor(mask)
    with torch.no_grad():
        expected = reference(ids, mask)
        got = ours(ids, mask).logits
    assert relative_error(got[mask], expected[mask]) < 1e-4
    assert ours.config.add_linear_bias is add_linear_bias


def test_save_load_round_trip_is_bit_exact(tmp_path):
    torch.manual_seed(3)
    model = load_model("tiny")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    save_model(model, tmp_path / "m")
    again = load_model(tmp_path / "m")
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    ids = torch.tensor(encode_batch(SEQS)[0])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, again(ids).logits)
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["model_type"] == "rnabert" and saved["position_embedding_type"] == "rope"
    assert saved["hidden_act"] == "swiglu" and "attn_backend" not in saved


def test_sharded_safetensors_with_an_index_load(tmp_path):
    model = load_model("tiny", seed=5)
    save_model(model, tmp_path / "sharded", max_shard_bytes=200_000)
    files = sorted(p.name for p in (tmp_path / "sharded").iterdir())
    assert "model.safetensors.index.json" in files and "model.safetensors" not in files
    assert sum(name.endswith(".safetensors") for name in files) > 1
    again = load_model(tmp_path / "sharded")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def forget_checksums(directory):
    """Make a saved directory look like one from another tool, whose weights we then rewrite."""
    config = json.loads((directory / "config.json").read_text())
    del config["dnafm_weights_crc32"]
    (directory / "config.json").write_text(json.dumps(config))


def test_tied_decoder_keys_in_the_file_load_too(tmp_path):
    model = load_model("tiny", seed=1)
    save_model(model, tmp_path / "m")
    state = load_file(tmp_path / "m" / "model.safetensors")
    state["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"].clone()
    state["cls.predictions.decoder.bias"] = state["cls.predictions.bias"].clone()
    save_file(state, tmp_path / "m" / "model.safetensors")
    forget_checksums(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert torch.equal(again.state_dict()["cls.predictions.bias"], model.state_dict()["cls.predictions.bias"])


def test_missing_unexpected_and_misshaped_keys_are_all_listed(tmp_path):
    save_model(load_model("tiny"), tmp_path / "m")
    state = load_file(tmp_path / "m" / "model.safetensors")
    del state["bert.encoder.layer.1.mlp.up_proj.weight"]
    state["bert.encoder.layer.7.extra.weight"] = torch.zeros(2)
    state["cls.predictions.bias"] = torch.zeros(17)
    save_file(state, tmp_path / "m" / "model.safetensors")
    forget_checksums(tmp_path / "m")
    with pytest.raises(CheckpointError) as err:
        load_model(tmp_path / "m")
    message = str(err.value)
    assert "missing keys: bert.encoder.layer.1.mlp.up_proj.weight" in message
    assert "unexpected keys: bert.encoder.layer.7.extra.weight" in message
    assert "cls.predictions.bias: checkpoint (17,), model (16,)" in message


def test_a_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    (tmp_path / "m").mkdir()
    save_model(load_model("tiny"), tmp_path / "good")
    (tmp_path / "m" / "config.json").write_text((tmp_path / "good" / "config.json").read_text())
    with open(tmp_path / "m" / "pytorch_model.bin", "wb") as handle:
        pickle.dump({"x": Evil()}, handle)
    with pytest.raises(CheckpointError, match="not a tensor-only PyTorch checkpoint"):
        load_model(tmp_path / "m")


def test_not_a_preset_nor_a_directory_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="neither a model preset"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        load_model(tmp_path / "empty")


def test_wrong_model_type_in_config_is_rejected(tmp_path):
    save_model(load_model("tiny"), tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["model_type"] = "bert"
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="model_type 'bert' is not 'rnabert'"):
        load_model(tmp_path / "m")


def test_save_leaves_no_partial_directory_when_writing_fails(tmp_path, monkeypatch):
    import dnafm_lib.model.model_dir as ck

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ck, "save_file", boom)
    with pytest.raises(OSError):
        save_model(load_model("tiny"), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
