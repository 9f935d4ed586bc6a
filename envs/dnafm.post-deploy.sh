#!/usr/bin/env bash
# Snakemake runs this once, inside the new envs/dnafm.yaml environment, from the workflow's
# directory: install this checkout's dnafm package (its dependencies came from the env file).
# Editable, so the rules run the code of this checkout.
set -euo pipefail
python -m pip install --no-deps --no-build-isolation --quiet --editable .
