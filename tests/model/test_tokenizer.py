import numpy as np
import pytest

from dnafm_lib.model import tokenizer as tk


def test_vocabulary_ids_match_the_published_checkpoints():
    # the published vocab.txt in id order, restated on purpose: a test of tk.VOCAB must not derive from it
    expected = "[PAD] [MASK] [CLS] [SEP] [UNK] A G C T U N [BOS] [EOS] [UNUSED1] [UNUSED2] [UNUSED3]".split()
    assert list(tk.VOCAB) == expected
    assert tk.ACGT_IDS == (5, 7, 6, 8)


def test_encode_maps_bases_and_keeps_softmask_as_a_flag():
    ids, soft = tk.encode("ACGTacgtN", return_softmask=True)
    assert ids.tolist() == [5, 7, 6, 8, 5, 7, 6, 8, 10]
    assert soft.tolist() == [False] * 4 + [True] * 4 + [False]
    assert ids.dtype == np.uint8


def test_iupac_ambiguity_codes_become_n():
    assert set(tk.encode("RYSWKMBDHVNryswkmbdhvn").tolist()) == {tk.N_ID}


@pytest.mark.parametrize(
    "text, offset, shown",
    [("ACGT*A", 4, "'*'"), ("AC-G", 2, "'-'"), ("ACGU", 3, "'U'"), ("AC\x00", 2, "byte 0x00"), ("ACGé", 3, "'é'")],
)
def test_bad_characters_are_errors_naming_the_offset(text, offset, shown):
    with pytest.raises(tk.TokenizationError) as err:
        tk.encode(text, where="genome.fa.gz: record 'chr2'")
    assert str(err.value) == f"genome.fa.gz: record 'chr2', offset {offset}: unexpected character {shown}"


def test_empty_input_encodes_to_nothing_and_frames_to_cls_eos():
    assert tk.encode("").size == 0
    assert tk.frame(tk.encode("")).tolist() == [tk.CLS_ID, tk.EOS_ID]


def test_bytes_and_uint8_arrays_encode_like_strings():
    as_str = tk.encode("ACGTNacgt")
    assert np.array_equal(tk.encode(b"ACGTNacgt"), as_str)
    assert np.array_equal(tk.encode(np.frombuffer(b"ACGTNacgt", dtype=np.uint8)), as_str)


def test_suffix_token_is_configurable_for_modelgenerator_inputs():
    ids, _ = tk.encode_batch(["AC"], suffix="[SEP]")
    assert ids.tolist() == [[tk.CLS_ID, 5, 7, tk.SEP_ID]]


def test_batch_encoding_right_pads_with_attention_masks():
    ids, mask = tk.encode_batch(["ACGT", "A"])
    assert ids.tolist() == [[2, 5, 7, 6, 8, 12], [2, 5, 12, 0, 0, 0]]
    assert mask.tolist() == [[True] * 6, [True] * 3 + [False] * 3]


def test_batch_longer_than_max_length_is_an_error_not_a_truncation():
    with pytest.raises(tk.TokenizationError, match="sequence 1: 5 nt plus 2 framing tokens exceeds max_length 6"):
        tk.encode_batch(["ACG", "ACGTA"], max_length=6)


def test_decode_round_trips_and_drops_special_tokens():
    ids, _ = tk.encode_batch(["ACGTN", "GG"])
    assert tk.decode(ids[0]) == "ACGTN"
    assert tk.decode(ids[1]) == "GG"
    assert tk.decode([2, 5, 12], skip_special=False) == "[CLS]A[EOS]"


def test_multi_megabase_input_encodes_vectorised_and_exactly():
    rng = np.random.default_rng(0)
    alphabet = np.frombuffer(b"ACGTNacgtn", dtype=np.uint8)
    codes = alphabet[rng.integers(0, alphabet.size, 5_000_000)]
    ids, soft = tk.encode(codes, return_softmask=True)
    lookup = {ord(c): i for c, i in zip("ACGTNacgtn", [5, 7, 6, 8, 10] * 2)}
    table = np.zeros(256, dtype=np.uint8)
    for code, token in lookup.items():
        table[code] = token
    assert np.array_equal(ids, table[codes])
    assert np.array_equal(soft, codes >= ord("a"))
    assert tk.decode(ids[:20]) == codes[:20].tobytes().decode().upper()
