"""How long `snakemake -n` takes to plan the NT cohort's tracks with realistic chunk counts (10^4+ jobs).

Builds, in a copy of this repository, the state of a cohort in the middle of mining: 796 genomes
(a genome sheet of `file` rows; the size mix of benchmarks/nt_rehearsal.py), the splits table
written, every genome prepared (empty stand-in files with the right names and ages) and its tracks
chunk plan written (one chunk per `--chunk-mb` of the genome's real size, at least one), and a
model checkpoint directory. Then times

    snakemake -n --cores 1 results/tracks/{genome}/aido/{tracks.json,igv.html}        (plain)
    snakemake -n --profile slurm results/tracks/{genome}/aido/{tracks.json,igv.html}  (the Slurm profile)

reporting the jobs planned and the wall time of each (median of --repeats).

    python benchmarks/plan_time.py --chunk-mb 20 --work /tmp/plan_time
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.nt_rehearsal import RAT_OLD, cohort  # noqa: E402
from tests.support.slurm import repo_copy  # noqa: E402


def build_state(work: Path, chunk_bp: int) -> tuple[int, int]:
    """The mid-mining cohort in `work`; returns (genomes, chunks)."""
    import yaml

    genomes = [g for g in cohort(812, 17, seed=11) if not g.gone or g.accession == RAT_OLD]
    (work / "fasta").mkdir(exist_ok=True)
    stand_in = work / "fasta" / "stand_in.fa"
    stand_in.write_text(">chr1\nACGT\n")
    model = work / "checkpoint"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}\n")
    rows = ["genome\tsource\taccession\tlocation\tsplit\tannotation"]
    rows += [f"{g.accession}\tfile\t{g.accession}\tfasta/stand_in.fa\t\t" for g in genomes]
    (work / "cohort.tsv").write_text("\n".join(rows) + "\n")
    config = {
        "genome_sheet": "cohort.tsv",
        "splits": {"validation_genomes": 50, "test_genomes": 50},
        "tracks": {"genomes": "all", "models": {"aido": str(model)}, "igv_js": "igv.min.js", "gpus_per_job": 0},
    }
    (work / "plan.yaml").write_text(yaml.safe_dump(config))
    (work / "igv.min.js").write_text("/* stand-in */\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    made = subprocess.run(
        [sys.executable, "-m", "snakemake", "results/splits/genomes.tsv", "--cores", "1", "--configfile", "plan.yaml"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    time.sleep(1.1)  # prepared genomes are newer than the splits table
    chunks = 0
    for g in genomes:
        folder = work / "results" / "genomes" / g.accession
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("genome.fa.gz", "genome.fa.gz.fai", "genome.fa.gz.gzi", "chrom.sizes", "provenance.json"):
            (folder / name).write_text("")
    time.sleep(1.1)
    for g in genomes:
        count = max(1, round(g.real_bp / chunk_bp))
        step = g.real_bp // count
        plan = work / "results" / "tracks" / g.accession / "chunks.tsv"
        plan.parent.mkdir(parents=True, exist_ok=True)
        lines = ["chunk\tcontig\tstart\tend"]
        lines += [f"chunk{i:05d}\tchr1\t{i * step}\t{(i + 1) * step}" for i in range(count)]
        plan.write_text("\n".join(lines) + "\n")
        chunks += count
    return len(genomes), chunks


def plan(work: Path, *args: str) -> tuple[float, float, int]:
    """(wall s, CPU s of the snakemake process, jobs planned)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    genomes = [
        line.split("\t")[0] for line in (work / "results" / "splits" / "genomes.tsv").read_text().splitlines()[1:]
    ]
    targets = [f"results/tracks/{g}/aido/{name}" for g in genomes for name in ("tracks.json", "igv.html")]
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", *targets, "-n", "--quiet", "rules", "--configfile", "plan.yaml", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    total = re.search(r"^total\s+(\d+)$", run.stdout, flags=re.MULTILINE)
    return wall, cpu, int(total.group(1)) if total else -1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunk-mb", type=float, default=20.0, help="real genome Mb per tracks chunk")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", default="/tmp/plan_time")
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=("plain", "slurm"),
        default=["plain", "slurm"],
        help="plain: --cores 1; slurm: --profile slurm",
    )
    args = parser.parse_args(argv)
    work = Path(args.work)
    if not (work / "plan.yaml").exists():
        work.mkdir(parents=True, exist_ok=True)
        repo_copy(work)
        genomes, chunks = build_state(work, int(args.chunk_mb * 1e6))
        print(f"cohort state: {genomes} genomes, {chunks} chunks planned", flush=True)
    modes = {"plain": ("plain", ("--cores", "1")), "slurm": ("profile slurm", ("--profile", "slurm"))}
    for label, extra in (modes[mode] for mode in args.modes):
        timings, cpus = [], []
        for _ in range(args.repeats):
            wall, cpu, jobs = plan(work, *extra)
            timings.append(wall)
            cpus.append(cpu)
            print(f"{label:14s} {jobs} jobs planned in {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
        print(
            f"{label:14s} median {statistics.median(timings):.1f} s wall, {statistics.median(cpus):.1f} s CPU "
            f"for {jobs} jobs (load average {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
