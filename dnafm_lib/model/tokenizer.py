"""Single-nucleotide tokenizer with the published AIDO.DNA vocabulary.

Encoding is one table lookup over the bytes of the sequence (no per-base Python loop), so it
runs at memory speed on chromosome-sized inputs. Lower case (soft-masked repeats) is folded to
upper case and reported as a boolean flag per base; IUPAC ambiguity codes become N; anything
else is an error naming its offset.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from dnafm_lib.core.errors import DnafmError

# Ids must match the published checkpoints (vocab.txt of AIDO.DNA).
VOCAB: tuple[str, ...] = (
    "[PAD]",
    "[MASK]",
    "[CLS]",
    "[SEP]",
    "[UNK]",
    "A",
    "G",
    "C",
    "T",
    "U",
    "N",
    "[BOS]",
    "[EOS]",
    "[UNUSED1]",
    "[UNUSED2]",
    "[UNUSED3]",
)
TOKEN_ID: dict[str, int] = {token: index for index, token in enumerate(VOCAB)}

PAD_ID = TOKEN_ID["[PAD]"]
MASK_ID = TOKEN_ID["[MASK]"]
CLS_ID = TOKEN_ID["[CLS]"]
SEP_ID = TOKEN_ID["[SEP]"]
EOS_ID = TOKEN_ID["[EOS]"]
N_ID = TOKEN_ID["N"]
#: The four nucleotide ids in A, C, G, T order (the order tracks and ISM report them in).
ACGT_IDS: tuple[int, int, int, int] = (TOKEN_ID["A"], TOKEN_ID["C"], TOKEN_ID["G"], TOKEN_ID["T"])
SPECIAL_IDS = frozenset(i for i, t in enumerate(VOCAB) if t.startswith("["))

#: IUPAC ambiguity codes for DNA; each becomes N.
IUPAC_AMBIGUOUS = "RYSWKMBDHVN"

_INVALID = 255


def _build_lookup() -> tuple[np.ndarray, np.ndarray]:
    ids = np.full(256, _INVALID, dtype=np.uint8)
    soft = np.zeros(256, dtype=bool)
    for base in "ACGT":
        ids[ord(base)] = TOKEN_ID[base]
        ids[ord(base.lower())] = TOKEN_ID[base]
        soft[ord(base.lower())] = True
    for code in IUPAC_AMBIGUOUS:
        ids[ord(code)] = N_ID
        ids[ord(code.lower())] = N_ID
        soft[ord(code.lower())] = True
    return ids, soft


BYTE_TO_ID, BYTE_IS_SOFTMASKED = _build_lookup()
_ID_TO_CHAR = np.array([ord(t) if len(t) == 1 else ord("?") for t in VOCAB], dtype=np.uint8)


class TokenizationError(DnafmError):
    """A character outside A/C/G/T and the IUPAC codes."""


def _as_bytes(sequence: str | bytes | bytearray | memoryview | np.ndarray, where: str) -> np.ndarray:
    if isinstance(sequence, np.ndarray):
        if sequence.dtype != np.uint8:
            raise TypeError(f"{where}: expected a uint8 array of ASCII codes, got {sequence.dtype}")
        return sequence.reshape(-1)
    if isinstance(sequence, str):
        try:
            sequence = sequence.encode("ascii")
        except UnicodeEncodeError as exc:
            bad = sequence[exc.start]
            raise TokenizationError(f"{where}offset {exc.start}: unexpected character {bad!r}") from None
    return np.frombuffer(sequence, dtype=np.uint8)


def encode(
    sequence: str | bytes | np.ndarray, *, where: str = "", return_softmask: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Nucleotides → uint8 token ids (no framing tokens).

    ``where`` prefixes error messages (e.g. ``"genome.fa.gz: record 'chr2', "``); offsets in
    errors are 0-based within ``sequence``. With ``return_softmask`` also return a bool array that
    is True where the input was lower case.
    """
    prefix = where if not where or where.endswith(", ") else where + ", "
    codes = _as_bytes(sequence, prefix)
    ids = BYTE_TO_ID[codes]
    if ids.size and ids.max() == _INVALID:
        offset = int(np.flatnonzero(ids == _INVALID)[0])
        char = chr(codes[offset])
        shown = repr(char) if char.isprintable() else f"byte 0x{codes[offset]:02x}"
        raise TokenizationError(f"{prefix}offset {offset}: unexpected character {shown}")
    if return_softmask:
        return ids, BYTE_IS_SOFTMASKED[codes]
    return ids


def frame(ids: np.ndarray, suffix_id: int = EOS_ID, width: int | None = None) -> np.ndarray:
    """``[CLS] + ids + suffix``, then [PAD] up to ``width``; ``suffix_id=SEP_ID`` gives
    ModelGenerator-identical inputs. The one place model inputs are framed."""
    out = np.full(max(ids.size + 2, width or 0), PAD_ID, dtype=np.int64)
    out[0] = CLS_ID
    out[1 : ids.size + 1] = ids
    out[ids.size + 1] = suffix_id
    return out


def encode_batch(
    sequences: Sequence[str | bytes | np.ndarray],
    *,
    max_length: int | None = None,
    suffix: str = "[EOS]",
    pad_to: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Frame and right-pad a batch.

    Returns ``(input_ids int64 (B, L), attention_mask bool (B, L))``. ``max_length`` counts the
    framing tokens; a longer sequence is an error rather than silently truncated. ``pad_to``
    fixes L (e.g. for static shapes under torch.compile).
    """
    suffix_id = TOKEN_ID[suffix]
    framed = [frame(encode(seq, where=f"sequence {i}"), suffix_id) for i, seq in enumerate(sequences)]
    longest = max((f.size for f in framed), default=2)
    if max_length is not None:
        for i, f in enumerate(framed):
            if f.size > max_length:
                raise TokenizationError(
                    f"sequence {i}: {f.size - 2} nt plus 2 framing tokens exceeds max_length {max_length}"
                )
    width = max(longest, pad_to or 0)
    input_ids = np.full((len(framed), width), PAD_ID, dtype=np.int64)
    attention_mask = np.zeros((len(framed), width), dtype=bool)
    for row, f in enumerate(framed):
        input_ids[row, : f.size] = f
        attention_mask[row, : f.size] = True
    return input_ids, attention_mask


def decode(ids: Iterable[int] | np.ndarray, *, skip_special: bool = True) -> str:
    """Token ids → string; special tokens are dropped (or written as their names)."""
    arr = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids), dtype=np.int64).reshape(-1)
    if arr.size and (arr.min() < 0 or arr.max() >= len(VOCAB)):
        raise TokenizationError(f"token id out of range 0..{len(VOCAB) - 1}")
    if skip_special:
        arr = arr[~np.isin(arr, list(SPECIAL_IDS))]
        return _ID_TO_CHAR[arr].tobytes().decode("ascii")
    return "".join(VOCAB[i] for i in arr)
