"""Splits stage: the genome table every later stage reads, and downloads of ncbi/url genomes.

Outputs (the file contracts other stages rely on):
  {results}/splits/genomes.tsv    checkpoint build_splits; columns genome, accession, source
                                  (ncbi|url|file), location, split (train|validation|test),
                                  annotation, assembly_name, status ("" where not applicable).
                                  Read it after `checkpoints.build_splits.get()`.
  {results}/splits/removed.tsv    genomes dropped (suppressed/retired/unknown at NCBI, or
                                  replaced by config) with the reason
  {results}/splits/summary.json   counts per split, removals, replacements
  {results}/downloads/{genome}/genomic.fna.gz  rule download_genome, for ncbi and url rows only:
                                  the verified FASTA, gzip (a url row's plain FASTA is gzipped)
  {results}/downloads/{genome}/download.json   accession, assembly_name, assembly_status,
                                  fasta_path, url, md5, retrieved_at, source
Sources: config splits.nt_list (the NT list, a file or a pinned URL) or, when it is null,
config genome_sheet. NCBI jobs hold the global resource `ncbi_jobs` (default
ncbi.max_concurrent_jobs; `--resources ncbi_jobs=N` or a profile overrides it).
"""

STAGE_TARGETS["splits"] += [SPLITS_OUTPUTS["genomes"], SPLITS_OUTPUTS["summary"]]

# Cap concurrent NCBI jobs unless the command line or profile already set the resource.
if "ncbi_jobs" not in workflow.global_resources:
    workflow.register_resource("ncbi_jobs", config["ncbi"]["max_concurrent_jobs"])


# `--list PATH_OR_URL` for the NT list, else `--sheet TSV` for the cohort's genome sheet.
if config["splits"]["nt_list"]:  # required; null = build from genome_sheet
    SPLITS_SOURCE = ["--list", config["splits"]["nt_list"]]
elif config.get("genome_sheet"):  # optional: a cohort of NT-list genomes needs none
    SPLITS_SOURCE = ["--sheet", config["genome_sheet"]]
else:
    raise WorkflowError("config: set splits.nt_list (the NT list) or genome_sheet (a genome sheet TSV)")
NCBI_ARGS = ["--ncbi-ftp-url", config["ncbi"]["ftp_url"], "--ncbi-api-url", config["ncbi"]["api_url"]]


# Downloads need the internet, which cluster compute nodes often lack: run them on the host.
localrules:
    build_splits,
    download_genome,


checkpoint build_splits:
    input:
        # A local list or sheet is an input; a list URL is fetched by the job itself.
        [] if SPLITS_SOURCE[1].startswith(("http://", "https://")) else [SPLITS_SOURCE[1]],
    output:
        genomes=report(
            SPLITS_OUTPUTS["genomes"],
            caption="../report/splits_summary.rst",
            category="Splits",
            labels={"file": layout.SPLITS_FILES["genomes"]},
        ),
        removed=report(
            SPLITS_OUTPUTS["removed"],
            caption="../report/splits_summary.rst",
            category="Splits",
            labels={"file": layout.SPLITS_FILES["removed"]},
        ),
        summary=report(
            SPLITS_OUTPUTS["summary"],
            caption="../report/splits_summary.rst",
            category="Splits",
            labels={"file": layout.SPLITS_FILES["summary"]},
        ),
    log:
        LOGS / "build_splits.log",
    conda:
        "../../envs/dnafm.yaml"
    resources:
        ncbi_jobs=1,
    params:
        source=SPLITS_SOURCE,
        ncbi=NCBI_ARGS,
        replace=[f"--replace={old}={new}" for old, new in config["splits"]["replacements"].items()],
        counts=[
            "--validation-genomes",
            config["splits"]["validation_genomes"],
            "--test-genomes",
            config["splits"]["test_genomes"],
        ],
        out_dir=SPLITS_DIR,
    shell:
        "dnafm splits {params.source:q} --out-dir {params.out_dir:q} {params.counts:q} {params.ncbi:q} "
        "{params.replace:q} > {log:q} 2>&1"


rule download_genome:
    input:
        # The splits table, or the genome sheet without the splits stage. ancient: rebuilding the
        # table must not re-download 800 genomes that did not change.
        genomes=ancient(GENOME_TABLE),
    output:
        **DOWNLOAD_OUTPUTS,
    log:
        LOGS / "download_genome" / "{genome}.log",
    wildcard_constraints:
        genome=GENOME_ID_PATTERN,
    conda:
        "../../envs/dnafm.yaml"
    resources:
        ncbi_jobs=1,
    params:
        source=config["ncbi"]["source"],
        ncbi=NCBI_ARGS,
        out_dir=lambda wildcards: DOWNLOADS_DIR / wildcards.genome,
    shell:
        "dnafm download --genomes-tsv {input.genomes:q} --genome {wildcards.genome:q} "
        "--out-dir {params.out_dir:q} --source {params.source:q} {params.ncbi:q} > {log:q} 2>&1"
