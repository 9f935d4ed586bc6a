"""The rules' conda env (envs/dnafm.yaml) installs this version of dnafm and its runtime dependencies."""

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
# PyPI name → conda-forge name where they differ
CONDA_NAME = {"torch": "pytorch", "isal": "python-isal", "pybigwig": "pybigwig", "matplotlib": "matplotlib-base"}


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_env_names_the_package_version_of_pyproject():
    env_text = (REPO / "envs" / "dnafm.yaml").read_text()
    assert re.search(r"^# dnafm-version: (\S+)$", env_text, re.M).group(1) == _project()["version"]


def test_env_holds_every_runtime_dependency_and_no_workflow_or_test_tool():
    listed = {
        re.split(r"[\s<>=]", dep)[0].lower()
        for dep in yaml.safe_load((REPO / "envs" / "dnafm.yaml").read_text())["dependencies"]
        if isinstance(dep, str)
    }
    runtime = {re.split(r"[\s<>=\[]", dep)[0].lower() for dep in _project()["dependencies"]}
    assert {CONDA_NAME.get(name, name) for name in runtime} <= listed
    assert not listed & {"snakemake", "pytest", "biopython", "pybedtools", "jsonschema"}


def test_post_deploy_installs_a_copy_not_an_editable_link():
    script = (REPO / "envs" / "dnafm.post-deploy.sh").read_text()
    assert "pip install --no-deps --no-build-isolation --quiet ." in script and "--editable" not in script
