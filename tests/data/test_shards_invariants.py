"""Invariants of the shards stage, over random genomes, N runs, soft-masking, windows and block sizes.

``shards.write_genome_shards`` then ``shards.open_split``:
  W1. windows are non-overlapping per contig, start at 0, step ``window_nt``, in FASTA order;
  W2. a kept window's tokens are the contig's bases there (upper-cased, IUPAC → N), PAD after
      its length; its soft-mask bits are the lower-case flags;
  W3. every window position is kept, or dropped and counted exactly once: as an all-N window,
      or as a contig's last window shorter than ``min_tail_nt``;
  W4. none of this depends on how many bytes are read per block.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnafm_lib.data.shards import open_split, write_genome_shards, write_manifest
from dnafm_lib.model.tokenizer import PAD_ID, encode

PROPERTY = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def genomes(draw):
    contigs = []
    for c in range(draw(st.integers(1, 4))):
        size = draw(st.integers(1, 90))
        bases = draw(st.lists(st.sampled_from("ACGTacgtRyN"), min_size=size, max_size=size))
        for _ in range(draw(st.integers(0, 2))):
            start = draw(st.integers(0, size - 1))
            run = draw(st.integers(1, 40))
            bases[start : start + run] = draw(st.sampled_from("Nn")) * len(bases[start : start + run])
        contigs.append((f"contig_{c}", "".join(bases)))
    window = draw(st.integers(1, 25))
    return contigs, window, draw(st.integers(1, window)), draw(st.sampled_from([7, 64, 1 << 16]))


@PROPERTY
@given(genomes())
def test_windows_are_the_genome_cut_in_order_and_every_drop_is_counted(tmp_path_factory, genome):
    contigs, window, min_tail, block_bytes = genome
    root = tmp_path_factory.mktemp("shards")
    fasta = root / "g.fa"
    fasta.write_text(
        "".join(
            f">{name} description\n" + "\n".join(seq[i : i + 13] for i in range(0, len(seq), 13)) + "\n"
            for name, seq in contigs
        )
    )
    metadata = write_genome_shards(
        fasta, root / "g", "g", window_nt=window, min_tail_nt=min_tail, block_bytes=block_bytes
    )
    write_manifest("train", [root / "g"], root / "train.manifest.json")
    reader = open_split(root / "train.manifest.json")

    expected, all_n, tails = [], 0, 0
    for name, seq in contigs:
        for start in range(0, len(seq), window):  # W1
            piece = seq[start : start + window]
            if len(piece) < window and len(piece) < min_tail:
                tails += 1
            elif set(piece.upper()) <= set("NRY"):  # IUPAC codes read as N
                all_n += 1
            else:
                expected.append((name, start, piece))
    # W3: kept + counted drops account for every window position.
    assert metadata["dropped_tail_windows"] == tails and metadata["dropped_all_n_windows"] == all_n
    assert len(reader) == metadata["n_windows"] == len(expected)
    for i, (name, start, piece) in enumerate(expected):  # W1, W2
        tokens, length = reader[i]
        assert reader.locate(i) == ("g", name, start, start + len(piece))
        assert length == len(piece)
        assert tokens[:length].tolist() == encode(piece).tolist()
        assert (tokens[length:] == PAD_ID).all()
        assert reader.softmask(i)[:length].tolist() == [b.islower() for b in piece]
