"""The cohort config rules the workflow applies at start (dnafm_lib.workflow.cohort), in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dnafm_lib.workflow.cohort import (
    WEIGHT_FILES,
    CohortConfigError,
    check_config,
    check_genome_names,
    check_model_directories,
    check_pretrain_batch,
    check_stage_needs,
    finetune_genomes,
    layer_config,
    layer_configs,
    selected_stages,
)

REPO = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
DEFAULTS = yaml.safe_load((REPO / "config/config.yaml").read_text())


def test_a_cohorts_model_map_replaces_the_defaults_and_its_settings_merge_key_by_key():
    cohort = {"tracks": {"models": {"aido7b": "/models/AIDO.DNA-7B"}, "window_bp": 3998}}
    config = layer_config(DEFAULTS, cohort, SCHEMA)
    assert config["tracks"]["models"] == {"aido7b": "/models/AIDO.DNA-7B"}  # no `demo: export`
    assert config["tracks"]["window_bp"] == 3998
    assert config["tracks"]["passes"] == DEFAULTS["tracks"]["passes"]  # a setting the cohort left alone
    assert config["pretrain"] == DEFAULTS["pretrain"]


def test_lists_and_free_maps_replace_while_nested_settings_sections_merge():
    defaults = {
        "stages": ["splits", "pretrain", "tracks", "finetune"],
        "splits": {"nt_list": None, "replacements": {"GCF_000000001.1": "GCF_000000002.1"}},
        "pretrain": {"run": "demo", "train": {"model": "tiny", "seed": 0, "model_overrides": {"a": 1}}},
    }
    cohort = {
        "stages": ["tracks"],
        "splits": {"replacements": {}},
        "pretrain": {"train": {"seed": 3, "model_overrides": {"b": 2}}},
    }
    config = layer_config(defaults, cohort, SCHEMA)
    assert config["stages"] == ["tracks"]
    assert config["splits"] == {"nt_list": None, "replacements": {}}
    assert config["pretrain"] == {"run": "demo", "train": {"model": "tiny", "seed": 3, "model_overrides": {"b": 2}}}
    assert defaults["pretrain"]["train"]["seed"] == 0  # the defaults are not modified


def test_stages_come_in_workflow_order_and_default_to_all():
    assert selected_stages({"stages": ["tracks", "splits"]}) == ("splits", "tracks")
    assert selected_stages({}) == ("splits", "pretrain", "tracks", "finetune")


def cohort(stages, models=None, finetune_model="/models/aido", **extra):
    config = layer_config(
        DEFAULTS,
        {
            "stages": stages,
            "tracks": {"models": models or {"aido": "/models/aido"}},
            "finetune": {"model": finetune_model},
            **extra,
        },
        SCHEMA,
    )
    return config, selected_stages(config)


@pytest.mark.parametrize(
    ("stages", "models", "finetune_model", "message"),
    [
        (
            ["tracks"],
            {"demo": "export", "aido": "/m"},
            "/m",
            "tracks.models: demo: 'export' is the model of the pretrain stage (results/models/demo); add pretrain",
        ),
        (["finetune"], None, "export", "finetune.model: 'export' is the model of the pretrain stage"),
        (["pretrain", "tracks"], None, "/m", "add splits to stages"),
    ],
)
def test_a_stage_that_needs_another_names_the_stage_to_add(stages, models, finetune_model, message):
    config, selected = cohort(stages, models, finetune_model)
    with pytest.raises(CohortConfigError, match="add (pretrain|splits) to stages") as error:
        check_stage_needs(config, selected)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_stages_that_have_what_they_need_pass():
    for stages in (["tracks"], ["splits", "pretrain", "tracks", "finetune"], ["splits", "tracks"]):
        config, selected = cohort(stages)
        check_stage_needs(config, selected)
    config, selected = cohort(["splits", "pretrain", "tracks"], {"demo": "export"})
    check_stage_needs(config, selected)


def test_tracks_without_splits_need_a_genome_sheet():
    config, selected = cohort(["tracks"])
    del config["genome_sheet"]
    with pytest.raises(CohortConfigError, match="set genome_sheet or add splits to stages"):
        check_stage_needs(config, selected)


@pytest.mark.parametrize("stages", [["tracks"], ["finetune"], ["tracks", "finetune"]])
def test_an_nt_list_cohort_without_splits_is_told_to_add_splits_not_given_the_demo_genomes(stages):
    layer = {
        "stages": stages,
        "tracks": {"models": {"aido": "/models/aido"}},
        "finetune": {"model": "/models/aido"},
        "splits": {"nt_list": "urls.txt"},
    }
    config = layer_configs(DEFAULTS, [layer], SCHEMA)
    assert config["genome_sheet"] == "config/genomes.tsv"  # the demo's sheet, inherited
    with pytest.raises(CohortConfigError, match=r"config splits.nt_list: .*config/genomes.tsv; add splits to stages"):
        check_stage_needs(config, selected_stages(config), [layer])


def test_an_nt_list_cohort_with_splits_or_its_own_sheet_passes():
    layer = {"stages": ["splits", "tracks"], "tracks": {"models": {"aido": "/m"}}, "splits": {"nt_list": "urls.txt"}}
    config = layer_configs(DEFAULTS, [layer], SCHEMA)
    check_stage_needs(config, selected_stages(config), [layer])
    # the sheet set on the command line (the last layer) is the cohort's own choice
    layers = [{**layer, "stages": ["tracks"]}, {"genome_sheet": "mine.tsv"}]
    config = layer_configs(DEFAULTS, layers, SCHEMA)
    check_stage_needs(config, selected_stages(config), layers)


def test_unknown_genome_names_are_named_with_the_sheets_genomes():
    config, selected = cohort(["tracks", "finetune"], genome_sheet="my.tsv")
    config["tracks"]["genomes"] = ["a", "zz"]
    with pytest.raises(
        CohortConfigError, match=r"config tracks.genomes: zz not in the genome sheet my.tsv \(its genomes: a, b\)"
    ):
        check_genome_names(config, selected, ["a", "b"])
    config["tracks"]["genomes"] = "all"
    config["finetune"]["genomes"] = ["c"]
    with pytest.raises(CohortConfigError, match="config finetune.genomes: c not in"):
        check_genome_names(config, selected, ["a", "b"])


def test_genome_names_of_an_nt_list_cohort_wait_for_its_splits_table():
    config, selected = cohort(["splits", "tracks"], splits={"nt_list": "urls.txt"})
    config["tracks"]["genomes"] = ["GCF_000001405.40"]
    check_genome_names(config, selected, ["a"])  # not known before build_splits: no error


def test_the_global_batch_must_split_over_nodes_and_processes():
    config, _ = cohort(["splits", "pretrain"])
    config["pretrain"].update(nodes=4, nproc_per_node=8)
    config["pretrain"]["train"].update(global_batch_size=1024, micro_batch_size=2)
    check_pretrain_batch(config)  # 1024 = 2 × 32 ranks × 16
    config["pretrain"]["train"]["global_batch_size"] = 1000
    with pytest.raises(
        CohortConfigError,
        match=r"global_batch_size 1000 is not divisible by micro_batch_size 2 × "
        r"world size 32.*pretrain.nodes 4 × pretrain.nproc_per_node 8",
    ):
        check_pretrain_batch(config)


def test_the_demo_and_the_shipped_cohorts_pass_every_start_check():
    for path in [REPO / "config/config.yaml", *sorted((REPO / "config/cohorts").glob("*.yaml"))]:
        layer = yaml.safe_load(path.read_text())
        config = layer_config(DEFAULTS, layer, SCHEMA)
        selected = selected_stages(config)
        check_stage_needs(config, selected, [layer])
        if "pretrain" in selected:
            check_pretrain_batch(config)


def test_a_missing_checkpoint_directory_is_named_at_start(tmp_path):
    config, selected = cohort(["tracks", "finetune"], {"aido": str(tmp_path / "AIDO.DNA-300M")}, str(tmp_path))
    with pytest.raises(
        CohortConfigError,
        match=r"config tracks.models: aido: .*AIDO.DNA-300M is not a checkpoint "
        r"directory \(no config.json\)",
    ):
        check_model_directories(config, selected)
    (tmp_path / "AIDO.DNA-300M").mkdir()
    (tmp_path / "AIDO.DNA-300M" / "config.json").write_text("{}")
    with pytest.raises(
        CohortConfigError, match=r"config tracks.models: aido: .*AIDO.DNA-300M has a config.json but no"
    ):
        check_model_directories(config, selected)  # a download cut short: refused at start, not in a scoring job
    (tmp_path / "AIDO.DNA-300M" / "model.safetensors").write_bytes(b"")
    with pytest.raises(CohortConfigError, match="config finetune.model: "):
        check_model_directories(config, selected)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    check_model_directories(config, selected)


def test_the_weight_files_looked_for_at_start_are_those_the_loader_reads():
    from dnafm_lib.model import model_dir

    loader = {
        model_dir.SAFETENSORS_NAME,
        model_dir.SAFETENSORS_INDEX,
        model_dir.TORCH_BIN_NAME,
        model_dir.TORCH_BIN_INDEX,
    }
    assert set(WEIGHT_FILES) == loader


@pytest.mark.parametrize(
    "layer, message",
    [
        ({"stagse": ["tracks"]}, "cohort.yaml: unknown config key stagse (did you mean stages?)"),
        (
            {"tracks": {"widow_bp": 3}},
            "cohort.yaml: unknown config key tracks.widow_bp (did you mean tracks.window_bp?)",
        ),
        ({"shards": {"window_nt": "big"}}, "cohort.yaml: config shards.window_nt: 'big' is not of type 'integer'"),
    ],
)
def test_a_config_mistake_is_one_line_naming_the_file_and_key(layer, message):
    config = layer_config(DEFAULTS, layer, SCHEMA)
    with pytest.raises(CohortConfigError) as error:
        check_config(config, SCHEMA, [("config/config.yaml", DEFAULTS), ("cohort.yaml", layer)])
    assert str(error.value) == message


def test_the_default_config_passes_the_check():
    check_config(DEFAULTS, SCHEMA, [("config/config.yaml", DEFAULTS)])


def test_command_line_config_replaces_the_cohort_files_models_too():
    cohort_file = {"stages": ["tracks"], "tracks": {"models": {"aido_dna_300m": "models/AIDO.DNA-300M"}}}
    command_line = {"tracks": {"models": {"aido": "/tmp/AIDO"}}}
    config = layer_configs(DEFAULTS, [cohort_file, command_line], SCHEMA)
    assert config["tracks"]["models"] == {"aido": "/tmp/AIDO"}
    assert config["stages"] == ["tracks"] and config["tracks"]["passes"] == DEFAULTS["tracks"]["passes"]


def test_the_finetune_example_takes_the_annotated_genomes_and_says_how_many():
    config, selected = cohort(["tracks", "finetune"], genome_sheet="s.tsv")
    note = finetune_genomes(config, selected, {"a": "a.gff3", "b": "", "c": "c.gff3.gz"})
    assert note == "finetune: 2 of 3 genomes have an annotation (GFF3) and make the example's windows: a, c"
    assert finetune_genomes(config, selected, {"a": "", "b": ""}).startswith(
        "warning: finetune: no genome of the genome sheet s.tsv has an annotation (GFF3)"
    )
    config["finetune"]["genomes"] = ["a", "b"]
    with pytest.raises(CohortConfigError, match=r"config finetune.genomes: b without an annotation \(GFF3\)"):
        finetune_genomes(config, selected, {"a": "a.gff3", "b": ""})
    assert finetune_genomes(*cohort(["tracks"]), {"a": ""}) is None  # not a stage: nothing to say


def test_finetune_on_the_nt_list_is_a_warning_at_start():
    config, selected = cohort(["splits", "pretrain", "finetune"], splits={"nt_list": "urls.txt"})
    assert finetune_genomes(config, selected, None).startswith(
        "warning: finetune: the genomes of the NT list (splits.nt_list) come without GFF3 annotations"
    )
