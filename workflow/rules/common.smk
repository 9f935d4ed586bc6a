# Shared by every stage: config validation, paths, and the list of final targets.
from pathlib import Path

from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")

RESULTS = Path(config["results_dir"])
LOGS = Path(config.get("logs_dir", "logs"))
# Each stage's .smk appends the outputs `rule all` asks for.
ALL_TARGETS = [RESULTS / "install_check.txt"]


rule check_install:
    output:
        RESULTS / "install_check.txt",
    log:
        LOGS / "check_install.log",
    shell:
        "dnafm model-info --preset tiny --json > {output} 2> {log}"
