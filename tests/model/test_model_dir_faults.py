"""Damaged checkpoint directories: each is one CheckpointError naming the file and what is wrong."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from dnafm_lib import load_model, save_model
from dnafm_lib.cli import main
from dnafm_lib.model.model_dir import CheckpointError


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "tiny"
    save_model(load_model("tiny", seed=3), path)
    return path


@pytest.fixture
def checkpoint(saved, tmp_path):
    path = tmp_path / "m"
    shutil.copytree(saved, path)
    return path


def _config(path, **changes):
    data = json.loads((path / "config.json").read_text())
    data.update(changes)
    (path / "config.json").write_text(json.dumps(data))


def _empty(path):
    (path / "model.safetensors").write_bytes(b"")


def _truncate(path):
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])


def _flip_a_tensor_byte(path):
    data = bytearray((path / "model.safetensors").read_bytes())
    data[-100] ^= 0x10  # inside the last tensor's data, past the header
    (path / "model.safetensors").write_bytes(bytes(data))


def _config_list(path):
    (path / "config.json").write_text("[1, 2]")


def _config_dir(path):
    (path / "config.json").unlink()
    (path / "config.json").mkdir()


def _rewrite(path, change):
    state = load_file(path / "model.safetensors")
    change(state)
    save_file(state, path / "model.safetensors", metadata={"format": "pt"})
    _config(path, dnafm_weights_crc32=None)  # as another tool would write it: no checksum


def _integer_weights(path):
    _rewrite(path, lambda s: s.update({"cls.predictions.bias": s["cls.predictions.bias"].to(torch.int32)}))


def _nan_weights(path):
    def poison(state):
        state["bert.encoder.ln.weight"][3] = float("nan")

    _rewrite(path, poison)


def _inf_weights(path):
    def poison(state):
        state["bert.encoder.ln.bias"][0] = float("inf")

    _rewrite(path, poison)


def _shard_with_index(path, index_text):
    (path / "model.safetensors").rename(path / "model-00001-of-00001.safetensors")
    (path / "model.safetensors.index.json").write_text(index_text)


CASES = [
    (_empty, "model.safetensors", "not a readable safetensors file"),
    (_truncate, "model.safetensors", "not a readable safetensors file"),
    (_flip_a_tensor_byte, "model.safetensors", "the tensors' CRC-32 differs from the one in config.json"),
    (_config_list, "config.json", "expected a JSON object, found list"),
    (_config_dir, "config.json", "is a directory, expected a JSON file"),
    (lambda p: (p / "config.json").write_text("{not json"), "config.json", "not valid JSON"),
    (lambda p: _config(p, hidden_size=-128), "config.json", "hidden_size is -128, expected at least 1"),
    (lambda p: _config(p, hidden_size="128"), "config.json", "hidden_size is '128', expected an integer"),
    (lambda p: _config(p, num_hidden_layers=2.5), "config.json", "num_hidden_layers is 2.5, expected an integer"),
    (lambda p: _config(p, layer_norm_eps=0), "config.json", "layer_norm_eps is 0, expected a number in (0.0, 1.0]"),
    (lambda p: _config(p, add_linear_bias="yes"), "config.json", "add_linear_bias is 'yes', expected true or false"),
    (lambda p: _config(p, pad_token_id=16), "config.json", "pad_token_id 16 is not below vocab_size 16"),
    (_integer_weights, "m", "weights must be floating point; found cls.predictions.bias (int32)"),
    (_nan_weights, "m", "NaN or infinite values in bert.encoder.ln.weight"),
    (_inf_weights, "m", "NaN or infinite values in bert.encoder.ln.bias"),
    (lambda p: _shard_with_index(p, "not json"), "model.safetensors.index.json", "not valid JSON"),
    (lambda p: _shard_with_index(p, '{"metadata": {}}'), "model.safetensors.index.json", "'weight_map' maps each"),
    (lambda p: _shard_with_index(p, '{"weight_map": {"a": 3}}'), "model.safetensors.index.json", "'weight_map'"),
    (
        lambda p: _shard_with_index(p, '{"weight_map": {"bert.x": "model-00001-of-00001.safetensors"}}'),
        "model-00001-of-00001.safetensors",
        "lacks bert.x that model.safetensors.index.json puts there",
    ),
]


@pytest.mark.parametrize("damage, culprit, message", CASES, ids=[c[2][:40] for c in CASES])
def test_a_damaged_checkpoint_is_one_error_naming_the_file(checkpoint, damage, culprit, message):
    damage(checkpoint)
    with pytest.raises(CheckpointError) as error:
        load_model(checkpoint)
    text = str(error.value)
    expected_path = checkpoint if culprit == "m" else checkpoint / culprit
    assert text.startswith(f"{expected_path}: ") and message in text


def test_a_saved_checkpoint_carries_its_checksum_and_saving_twice_gives_the_same_bytes(saved, tmp_path):
    checksums = json.loads((saved / "config.json").read_text())["dnafm_weights_crc32"]
    assert list(checksums) == ["model.safetensors"] and len(checksums["model.safetensors"]) == 8
    save_model(load_model("tiny", seed=3), tmp_path / "again")
    for name in ("config.json", "model.safetensors"):
        assert (tmp_path / "again" / name).read_bytes() == (saved / name).read_bytes()
    model = load_model(saved)
    reference = load_model("tiny", seed=3)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))


def test_cli_reports_a_corrupt_checkpoint_in_one_line_and_writes_nothing(checkpoint, tmp_path, capsys):
    _flip_a_tensor_byte(checkpoint)
    (tmp_path / "g.fa").write_text(">c\nACGTACGTAC\n")
    (tmp_path / "r.bed").write_text("c\t2\t5\n")
    out = tmp_path / "out"
    out.mkdir()
    code = main(
        [
            "ism",
            "--model",
            str(checkpoint),
            "--fasta",
            str(tmp_path / "g.fa"),
            "--regions",
            str(tmp_path / "r.bed"),
            "--out-dir",
            str(out / "ism"),
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert f"{checkpoint / 'model.safetensors'}: the tensors' CRC-32 differs from the one in config.json" in err
    assert list(out.iterdir()) == []


def test_a_flipped_byte_in_one_shard_of_a_sharded_checkpoint_names_that_shard(tmp_path):
    save_model(load_model("tiny", seed=3), tmp_path / "m", max_shard_bytes=200_000)
    shards = sorted((tmp_path / "m").glob("model-*.safetensors"))
    checksums = json.loads((tmp_path / "m" / "config.json").read_text())["dnafm_weights_crc32"]
    assert len(shards) > 1 and sorted(checksums) == [p.name for p in shards]
    load_model(tmp_path / "m")  # whole, it loads
    data = bytearray(shards[1].read_bytes())
    data[-8] ^= 0x01
    shards[1].write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as error:
        load_model(tmp_path / "m")
    assert str(error.value).startswith(f"{shards[1]}: the tensors' CRC-32 differs from the one in config.json")
