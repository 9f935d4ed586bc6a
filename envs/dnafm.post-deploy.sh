#!/usr/bin/env bash
# Snakemake runs this once, inside the new envs/dnafm.yaml environment, from the workflow's
# directory: install a copy of this checkout's dnafm package (its dependencies came from the env
# file) at the version dnafm.yaml names, so the env never runs code other than what it was built for.
set -euo pipefail
expected=$(sed -n 's/^# dnafm-version: //p' envs/dnafm.yaml)
actual=$(python -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
if [ "$expected" != "$actual" ]; then
    echo "envs/dnafm.yaml is for dnafm $expected but this checkout is $actual: bump the version in both" >&2
    exit 1
fi
python -m pip install --no-deps --no-build-isolation --quiet .
