"""The NT cohort rehearsed end to end on the local single-node Slurm (scripts/slurm-up.sh).

A local NCBI mirror on 127.0.0.1 (tests/support/ncbi_server.py) serves an 812-line NT-shaped list — 17
genomes gone from NCBI (suppressed, retired, unknown), the rat in the old
``genomes/refseq/…/latest_assembly_versions/`` URL form and swapped by config — and 796 synthetic
genomes whose sizes follow the real cohort's mix (a few dozen vertebrate-size genomes, mid-size
invertebrates, fungi and protists, hundreds of bacteria), multiplied by ``--scale``. The real
workflow then runs in a copy of this repository with ``snakemake --profile slurm`` (the repo's
profile, edited for this node: no GPUs, 2 CPUs), one stage at a time:

  splits → downloads → prepare + shard (--genomes-per-job genomes per Slurm job) → manifests →
  pretraining (2 ranks, preempted once with USR1 and requeued) → export → tracks for a few
  genomes → report

and prints, per stage: wall time, jobs run per rule, Slurm jobs submitted, Snakemake's own CPU
time per job (DAG build, scheduling, status polling: the main process only), retries and
requeues, and the disk the stage's outputs take.

    sudo scripts/slurm-up.sh
    python benchmarks/nt_rehearsal.py --scale 1e-4 --work /tmp/nt_rehearsal
    python benchmarks/nt_rehearsal.py --smoke          # 20 list lines, a few minutes (CI: test_slurm_rehearsal.py)

The size mix (per category: genomes in the 812-line list, typical assembly size) is an
assumption, stated in CATEGORIES below; the real list's genome sizes are not read (no network).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.ncbi_server import FakeAssembly, FakeNcbi  # noqa: E402
from tests.support.slurm import edit_profile_for_this_node, node_ready, preempt_pretraining, repo_copy  # noqa: E402

RAT_OLD, RAT_NEW = "GCF_000001895.5", "GCF_015227675.2"
# (category, genomes in the 812-line list, typical assembly size in bp). The NT paper's 850
# genomes total ~174 Gb; this mix, scaled to 812 lines, totals ~165 Gb (vertebrates ~90% of it).
CATEGORIES = [
    ("mammal", 30, 2_700_000_000),
    ("other_vertebrate", 54, 1_200_000_000),
    ("invertebrate", 37, 300_000_000),
    ("plant_like_protist", 10, 40_000_000),
    ("fungus", 44, 35_000_000),
    ("bacterium", 637, 4_200_000),
]
# Smallest synthetic genome: two 254-nt windows at least.
MIN_GENOME_BP = 600
STAGES = ["splits", "downloads", "prepare_shard", "pretrain", "export", "tracks", "report"]


@dataclass
class Genome:
    line: int
    accession: str
    assembly_name: str
    category: str
    real_bp: int
    status: str = "current"  # current, previous, suppressed, retired, unknown

    @property
    def gone(self) -> bool:
        return self.status in ("suppressed", "retired", "unknown")


class ServedAssembly(FakeAssembly):
    """A fake assembly whose gzip bytes are made once (the server's default recompresses per request)."""

    @cached_property
    def fasta_gz(self) -> bytes:
        return gzip.compress(self.fasta, compresslevel=1, mtime=0)


def cohort(lines: int, gone: int, seed: int) -> list[Genome]:
    """`lines` NT-shaped list entries, categories shuffled over the train part, the mix of CATEGORIES
    (scaled to `lines`), `gone` of them removed from NCBI (one is the rat, swapped by config)."""
    rng = random.Random(seed)
    total = sum(count for _, count, _ in CATEGORIES)
    counts = [max(1, round(count * lines / total)) for _, count, _ in CATEGORIES]
    counts[-1] += lines - sum(counts)  # bacteria take up the rounding
    kinds = [(name, size) for (name, _, size), count in zip(CATEGORIES, counts) for _ in range(count)]
    rng.shuffle(kinds)
    genomes = []
    for index, (category, size) in enumerate(kinds):
        accession = f"GCF_{100000000 + index * 37:09d}.{1 + index % 3}"
        real_bp = int(size * rng.uniform(0.7, 1.3))
        genomes.append(Genome(index + 1, accession, f"ASM{accession[4:13]}v1", category, real_bp))
    # The rat: a mammal in the train part, listed by its old refseq URL.
    train_end = lines - lines // 5
    rat = next((g for g in genomes[:train_end] if g.category == "mammal"), genomes[0])
    rat.accession, rat.assembly_name, rat.status, rat.category = RAT_OLD, "Rnor_6.0", "suppressed", "mammal"
    train_part = [g for g in genomes[:train_end] if g is not rat]
    for order, genome in enumerate(rng.sample(train_part, gone - 1)):
        genome.status = ("suppressed", "retired", "unknown")[order % 3]
    return genomes


def list_line(genome: Genome) -> str:
    acc, asm = genome.accession, genome.assembly_name
    if acc == RAT_OLD:
        return (
            f"https://ftp.ncbi.nlm.nih.gov/genomes/refseq/vertebrate_mammalian/Rattus_norvegicus/"
            f"latest_assembly_versions/{acc}_{asm}/{acc}_{asm}_genomic.fna.gz"
        )
    digits = acc[4:13]
    return (
        f"https://ftp.ncbi.nlm.nih.gov/genomes/all/{acc[:3]}/{digits[:3]}/{digits[3:6]}/{digits[6:9]}/"
        f"{acc}_{asm}/{acc}_{asm}_genomic.fna.gz"
    )


def synthetic_genome(seed: int, total_bp: int, category: str) -> bytes:
    """A FASTA of `total_bp` nt: soft-masked stretches and an N gap; vertebrate-like genomes get a
    few chromosomes, bacteria one."""
    rng = random.Random(seed)
    contigs = {"mammal": 6, "other_vertebrate": 5, "invertebrate": 3}.get(category, 1)
    sizes = [total_bp // contigs] * contigs
    sizes[-1] += total_bp - sum(sizes)
    out = []
    for index, size in enumerate(sizes, 1):
        seq = bytearray(rng.choices(b"ACGT", k=size))
        if size > 2000:  # a soft-masked repeat and an N gap, as assemblies have
            start = rng.randrange(0, size - 1000)
            seq[start : start + 300] = seq[start : start + 300].lower()
            gap = rng.randrange(0, size - 1000)
            seq[gap : gap + 200] = b"N" * 200
        out.append(f">chr{index} synthetic {category}\n".encode())
        out.extend(bytes(seq[i : i + 80]) + b"\n" for i in range(0, size, 80))
    return b"".join(out)


def scaled_bp(genome: Genome, scale: float) -> int:
    return max(MIN_GENOME_BP, int(genome.real_bp * scale))


# ---------------------------------------------------------------------------------------- the run
@dataclass
class StageResult:
    stage: str
    wall_s: float
    rc: int
    jobs_per_rule: dict[str, int] = field(default_factory=dict)
    slurm_jobs: int = 0
    slurm_jobs_per_rule: dict[str, int] = field(default_factory=dict)
    snakemake_cpu_s: float = 0.0
    retries: int = 0
    requeues: int = 0
    disk_mb: dict[str, float] = field(default_factory=dict)

    @property
    def jobs(self) -> int:
        return sum(count for rule, count in self.jobs_per_rule.items() if rule != "all")


def own_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` itself (not its children), or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def disk_mb(path: Path) -> float:
    if not path.exists():
        return 0.0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


class Rehearsal:
    def __init__(self, work: Path, ncbi: FakeNcbi, log_dir: Path):
        self.work, self.ncbi, self.log_dir = work, ncbi, log_dir
        self.results: list[StageResult] = []
        self.preempted_job: str | None = None

    def snakemake(
        self,
        stage: str,
        targets: list[str],
        extra: tuple[str, ...] = (),
        preempt_metrics: Path | None = None,
        timeout_s: float = 7200,
    ) -> StageResult:
        log_path = self.log_dir / f"{stage}.log"
        command = [
            sys.executable,
            "-m",
            "snakemake",
            *targets,
            "--profile",
            "slurm",
            "--configfile",
            "rehearsal.yaml",
            *extra,
        ]
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        started = time.monotonic()
        with open(log_path, "w") as log:
            process = subprocess.Popen(command, cwd=self.work, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
            cpu = 0.0
            if preempt_metrics is not None:
                self.preempted_job = preempt_pretraining(preempt_metrics, process, min_steps=5)
            while process.poll() is None:
                sample = own_cpu_s(process.pid)
                cpu = sample if sample is not None else cpu
                if time.monotonic() - started > timeout_s:
                    process.terminate()
                time.sleep(0.5)
        wall = time.monotonic() - started
        text = log_path.read_text()
        result = StageResult(stage, wall, process.returncode, snakemake_cpu_s=cpu)
        result.jobs_per_rule = job_counts(text)
        submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", text)
        result.slurm_jobs = len(set(submitted))
        result.slurm_jobs_per_rule = slurm_jobs_per_rule(text)
        result.retries = len(re.findall(r"Trying to restart job", text))
        result.requeues = requeue_count(set(submitted))
        results = self.work / "results"
        result.disk_mb = (
            {d.name: round(disk_mb(d), 2) for d in sorted(results.iterdir()) if d.is_dir()} if results.exists() else {}
        )
        self.results.append(result)
        print(format_stage(result), flush=True)
        if result.rc != 0:
            print(text[-4000:], file=sys.stderr)
            raise SystemExit(f"stage {stage} failed (rc {result.rc}); log: {log_path}")
        return result


def job_counts(log_text: str) -> dict[str, int]:
    """Jobs finished per rule (local jobs, Slurm jobs and the jobs inside group jobs)."""
    counts: dict[str, int] = {}
    # A group job's steps are reported by the job and again by the main process: count job ids once.
    for _, rule in set(re.findall(r"^Finished jobid: (\S+) \(Rule: (\w+)\)", log_text, flags=re.MULTILINE)):
        counts[rule] = counts.get(rule, 0) + 1
    return counts


def slurm_jobs_per_rule(log_text: str) -> dict[str, int]:
    """Slurm submissions per rule (a group job counts once, under its group's name)."""
    counts: dict[str, int] = {}
    # The plugin logs one line per submission: "Job {jobid} has been submitted with SLURM jobid ... (log: …/rule_{name}/…)".
    for line in re.findall(r"has been submitted with SLURM jobid \d+ \(log: ([^)]*)\)", log_text):
        match = re.search(r"/(rule_[^/]+|group_[^/]+)/", line)
        name = match.group(1) if match else "?"
        counts[name] = counts.get(name, 0) + 1
    return counts


def requeue_count(job_ids: set[str]) -> int:
    if not job_ids:
        return 0
    result = subprocess.run(
        ["sacct", "-X", "--duplicates", "--parsable2", "--noheader", "--format=State", "-j", ",".join(sorted(job_ids))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout.split().count("REQUEUED")


def format_stage(result: StageResult) -> str:
    per_job = result.snakemake_cpu_s / max(1, result.jobs)
    rules = ", ".join(f"{rule} {count}" for rule, count in sorted(result.jobs_per_rule.items()) if rule != "all")
    slurm = ", ".join(f"{name} {count}" for name, count in sorted(result.slurm_jobs_per_rule.items()))
    return (
        f"{result.stage:14s} wall {result.wall_s:7.1f} s | jobs {result.jobs:5d} ({rules}) | Slurm jobs "
        f"{result.slurm_jobs} ({slurm}) | Snakemake CPU {result.snakemake_cpu_s:.1f} s, {per_job:.2f} s/job | "
        f"retries {result.retries}, requeues {result.requeues}"
    )


def write_config(
    work: Path,
    ncbi: FakeNcbi,
    *,
    validation: int,
    test: int,
    tracks_genomes: list[str],
    max_steps: int,
    genomes_per_job: int,
) -> None:
    import yaml

    (work / "igv.min.js").write_text("/* stand-in for the igv.js dist file: no npm in the rehearsal */\n")
    config = {
        "cohort": "nt_rehearsal",
        "results_dir": "results",
        "logs_dir": "logs",
        "splits": {
            "nt_list": ncbi.static_url("nt_urls.txt"),
            "validation_genomes": validation,
            "test_genomes": test,
            "replacements": {RAT_OLD: RAT_NEW},
        },
        "ncbi": {"ftp_url": ncbi.ftp_url, "api_url": ncbi.api_url, "source": "ftp", "max_concurrent_jobs": 4},
        "prepare": {"genomes_per_job": genomes_per_job},
        "shards": {"window_nt": 254, "min_tail_nt": 64},
        "pretrain": {
            "run": "rehearsal",
            "nproc_per_node": 1,
            "nodes": 1,
            "runtime_min": 60,
            "mem_mb": 3000,
            "train": {
                "model": "tiny",
                "global_batch_size": 16,
                "micro_batch_size": 8,
                "max_steps": max_steps,
                "warmup_steps": 2,
                "checkpoint_every_steps": 10,
                "validate_every_steps": max_steps,
                "validation_samples": 32,
                "device": "cpu",
                "require_below_composition_entropy": False,
                "progress_bar": False,
            },
        },
        "tracks": {
            "genomes": tracks_genomes,
            "models": {"rehearsal": "export"},
            "chunk_bp": 50000,
            "window_bp": 254,
            "stride_bp": 200,
            "passes": 2,
            "batch_size": 16,
            "device": "cpu",
            "threads": 1,
            "gpus_per_job": 0,
            "mem_mb": 3000,
            "igv_js": "igv.min.js",
        },
    }
    (work / "rehearsal.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def read_table(path: Path) -> list[dict[str, str]]:
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:] if line]


def rehearse(args) -> list[StageResult]:
    lines, gone = (20, 3) if args.smoke else (args.lines, args.gone)
    # The NT rule: 50 validation and 50 test genomes; fewer for a shorter list.
    validation = test = min(50, lines // 8) if not args.smoke else 2
    scale = args.scale if args.scale is not None else (1e-5 if args.smoke else 1e-4)
    genomes = cohort(lines, gone, args.seed)
    ncbi = FakeNcbi().start()
    ncbi.max_page_size = 1000
    listed_bp = 0
    for genome in genomes:
        if genome.accession == RAT_OLD:
            ncbi.add(FakeAssembly(RAT_OLD, genome.assembly_name, status="suppressed", current_accession=RAT_NEW))
            ncbi.add(
                ServedAssembly(RAT_NEW, "mRatBN7.2", fasta=synthetic_genome(1, scaled_bp(genome, scale), "mammal"))
            )
            listed_bp += scaled_bp(genome, scale)
        elif genome.status != "unknown":
            fasta = None if genome.gone else synthetic_genome(genome.line, scaled_bp(genome, scale), genome.category)
            ncbi.add(ServedAssembly(genome.accession, genome.assembly_name, status=genome.status, fasta=fasta))
            listed_bp += 0 if genome.gone else scaled_bp(genome, scale)
    ncbi.static["nt_urls.txt"] = ("\n".join(list_line(g) for g in genomes) + "\n").encode()
    kept = [g for g in genomes if not g.gone or g.accession == RAT_OLD]
    print(
        f"cohort: {lines} list lines, {gone} gone, {len(kept)} genomes to download; scale {scale:g}: "
        f"{listed_bp / 1e6:.2f} Mb synthetic for {sum(g.real_bp for g in kept) / 1e9:.1f} Gb real; "
        f"mirror at {ncbi.base_url}",
        flush=True,
    )

    work = Path(args.work)
    if work.exists() and any(work.iterdir()) and not args.resume:
        raise SystemExit(f"{work} is not empty: give a new --work or --resume")
    work.mkdir(parents=True, exist_ok=True)
    repo_copy(work)
    edit_profile_for_this_node(work / "profiles" / "slurm", jobs=args.jobs)
    log_dir = work / "rehearsal_logs"
    log_dir.mkdir(exist_ok=True)
    # Tracks for a few genomes: the largest (vertebrate-size) kept one and a bacterium.
    biggest = max((g for g in kept if g.accession != RAT_OLD), key=lambda g: g.real_bp)
    bacterium = next(g for g in kept if g.category == "bacterium")
    tracks_genomes = [biggest.accession, bacterium.accession]
    write_config(
        work,
        ncbi,
        validation=validation,
        test=test,
        tracks_genomes=tracks_genomes,
        max_steps=20 if args.smoke else 40,
        genomes_per_job=args.genomes_per_job,
    )

    run = Rehearsal(work, ncbi, log_dir)
    started = time.monotonic()
    try:
        run.snakemake("splits", ["results/splits/genomes.tsv", "results/splits/summary.json"])
        table = read_table(work / "results" / "splits" / "genomes.tsv")
        names = [row["genome"] for row in table]
        run.snakemake("downloads", [f"results/downloads/{g}/download.json" for g in names])
        run.snakemake("prepare_shard", [f"results/shards/{s}.manifest.json" for s in ("train", "validation", "test")])
        run.snakemake(
            "pretrain",
            ["results/pretrain/rehearsal/summary.json"],
            preempt_metrics=work / "results" / "pretrain" / "rehearsal" / "metrics.csv",
        )
        run.snakemake("export", ["results/models/rehearsal/config.json", "results/pretrain/rehearsal/curves.png"])
        run.snakemake("tracks", [f"results/tracks/{g}/rehearsal/igv.html" for g in tracks_genomes])
        report_targets = [
            "results/splits/genomes.tsv",
            "results/pretrain/rehearsal/curves.png",
            *[f"results/tracks/{g}/rehearsal/tracks.json" for g in tracks_genomes],
        ]
        run.snakemake("report", report_targets, extra=("--report", "report.html"))
    finally:
        ncbi.stop()
    total = time.monotonic() - started
    summary = json.loads((work / "results" / "splits" / "summary.json").read_text())
    print(
        f"\nsplits: {summary['listed_genomes']} listed → {summary['genomes']} genomes "
        f"{summary['per_split']}; {summary['removed']} removed"
    )
    print(f"pretraining job preempted (USR1) and requeued: Slurm job {run.preempted_job}")
    print(
        f"total wall {total:.0f} s; Slurm jobs {sum(r.slurm_jobs for r in run.results)}; "
        f"Snakemake CPU {sum(r.snakemake_cpu_s for r in run.results):.0f} s for "
        f"{sum(r.jobs for r in run.results)} jobs"
    )
    final_disk = run.results[-1].disk_mb
    print("disk (MB): " + ", ".join(f"{k} {v}" for k, v in final_disk.items()))
    record = {
        "scale": scale,
        "lines": lines,
        "genomes": summary["genomes"],
        "synthetic_mb": listed_bp / 1e6,
        "total_wall_s": total,
        "preempted_job": run.preempted_job,
        "stages": [r.__dict__ | {"jobs": r.jobs} for r in run.results],
    }
    (work / "rehearsal.json").write_text(json.dumps(record, indent=1))
    print(f"numbers: {work / 'rehearsal.json'}")
    return run.results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=None,
        help="genome sizes × this (default 1e-4; 1e-5 with --smoke); at least 600 nt each",
    )
    parser.add_argument("--smoke", action="store_true", help="20 list lines (3 gone), 2+2 validation/test genomes")
    parser.add_argument("--lines", type=int, default=812, help="NT list lines (the paper's: 812)")
    parser.add_argument("--gone", type=int, default=17, help="of them, genomes gone from NCBI (one is the rat)")
    parser.add_argument("--work", default="/tmp/nt_rehearsal", help="an empty directory for the repo copy and results")
    parser.add_argument("--resume", action="store_true", help="reuse a --work directory of an earlier run")
    parser.add_argument("--jobs", type=int, default=8, help="Slurm jobs in the queue at once")
    parser.add_argument(
        "--genomes-per-job",
        type=int,
        default=4,
        help="prepare.genomes_per_job: genomes prepared and sharded per Slurm job (default 4, the NT "
        "config's; 1 runs the one-genome rules, grouped per genome by the profile)",
    )
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    if not node_ready():
        raise SystemExit("no Slurm node is up: run `sudo scripts/slurm-up.sh` first")
    rehearse(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
