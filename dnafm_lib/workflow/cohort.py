"""A cohort's configuration as the workflow sees it: defaults layered under the cohort, the
stages it asks for, and the checks that need only the config and the genome sheet.

Snakemake merges ``--configfile`` dicts recursively into ``config/config.yaml``, so a cohort
that lists ``tracks.models: {aido7b: /path}`` would also get the demo's ``demo: export``.
``layer_config`` re-layers the two with the rule the config schema implies: a settings
section (a schema object with declared ``properties``) is merged key by key, while a map of
the user's own keys (``tracks.models``, ``splits.replacements``) and every list are replaced
whole by the cohort's. Everything here is plain Python (no torch), run at workflow start.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.workflow.layout import EXPORT, Layout

#: the stages a cohort can ask for (top-level ``stages:``), in workflow order
STAGES = ("splits", "pretrain", "tracks", "finetune")


class CohortConfigError(DnafmError):
    """A cohort configuration that cannot run: a missing stage, an unknown genome, a bad batch."""


def layer_config(defaults: Mapping[str, Any], cohort: Mapping[str, Any], schema: Mapping[str, Any]) -> dict:
    """``cohort`` over ``defaults``: settings sections merge key by key, maps of user keys and lists are replaced."""
    merged = copy.deepcopy(dict(defaults))
    for key, value in cohort.items():
        merged[key] = _layer_value(merged.get(key), value, _property_schema(schema, key))
    return merged


def layer_configs(defaults: Mapping[str, Any], layers: list[Mapping[str, Any]], schema: Mapping[str, Any]) -> dict:
    """``layer_config`` applied in order: the defaults, each ``--configfile``, then ``--config``."""
    merged = copy.deepcopy(dict(defaults))
    for layer in layers:
        merged = layer_config(merged, layer, schema)
    return merged


def _property_schema(schema: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    if not isinstance(schema, Mapping):
        return None
    return (schema.get("properties") or {}).get(key)


def _layer_value(default: Any, value: Any, schema: Mapping[str, Any] | None) -> Any:
    # Only an object whose keys the schema declares is a settings section; anything else (a map
    # of model names, accession swaps, a list of genomes) belongs to the cohort alone.
    is_section = isinstance(schema, Mapping) and "properties" in schema
    if is_section and isinstance(default, Mapping) and isinstance(value, Mapping):
        return layer_config(default, value, schema)
    return copy.deepcopy(value)


def check_config(
    config: Mapping[str, Any], schema: Mapping[str, Any], named_layers: Sequence[tuple[str, Mapping[str, Any]]]
) -> None:
    """The layered ``config`` against the config schema, in one line naming the file at fault.

    ``named_layers`` are (file name, its config) in layering order: the defaults, each
    ``--configfile``, then ``("--config", …)``. A key the schema does not know is named with the
    nearest valid one; any other violation names the key path and the last file that set it.
    """
    for where, layer in named_layers:
        _check_known_keys(layer, schema, where, ())
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(schema).iter_errors(dict(config)))
    if error is None:
        return
    path = [str(part) for part in error.absolute_path]
    where = next((name for name, layer in reversed(named_layers) if _holds(layer, path)), "config")
    message = error.message if len(error.message) <= 300 else error.message[:300] + "…"
    raise CohortConfigError(f"{where}: config {'.'.join(path) or '(top level)'}: {message}")


def _check_known_keys(value: Any, schema: Any, where: str, path: tuple[str, ...]) -> None:
    if not isinstance(value, Mapping) or not isinstance(schema, Mapping) or "properties" not in schema:
        return
    known = schema["properties"]
    for key, sub in value.items():
        if key in known:
            _check_known_keys(sub, known[key], where, (*path, str(key)))
        elif schema.get("additionalProperties", True) is False:
            nearest = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f"did you mean {'.'.join((*path, nearest[0]))}?" if nearest else f"known: {', '.join(known)}"
            raise CohortConfigError(f"{where}: unknown config key {'.'.join((*path, str(key)))} ({hint})")


def _holds(layer: Any, path: list[str]) -> bool:
    """Whether ``layer`` sets the value at ``path`` (keys; list items count as their list)."""
    for key in path:
        if not isinstance(layer, Mapping) or key not in layer:
            return isinstance(layer, list)
        layer = layer[key]
    return True


def selected_stages(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The cohort's ``stages`` in workflow order (the schema has checked the names)."""
    wanted = config.get("stages", list(STAGES))
    return tuple(stage for stage in STAGES if stage in wanted)


def check_stage_needs(
    config: Mapping[str, Any], stages: tuple[str, ...], cohort_layers: Sequence[Mapping[str, Any]] = ()
) -> None:
    """A stage that needs another stage's output fails here, in one line naming the stage to add.

    ``cohort_layers`` are the cohort's own configs (each ``--configfile``, then ``--config``), as
    given to ``layer_configs``: they tell a genome sheet the cohort chose from the demo's default.
    """
    if "pretrain" in stages and "splits" not in stages:
        raise CohortConfigError(
            "config stages: pretrain trains on the train/validation genomes of the splits stage; add splits to stages"
        )
    if "pretrain" not in stages:
        export = Layout(config.get("results_dir", "results")).model_dir(
            EXPORT, config.get("pretrain", {}).get("run", "demo")
        )
        if "tracks" in stages:
            exported = [name for name, source in config["tracks"]["models"].items() if source == EXPORT]
            if exported:
                raise CohortConfigError(
                    f"config tracks.models: {', '.join(exported)}: '{EXPORT}' is the model of the pretrain stage "
                    f"({export}); add pretrain to stages, or name a checkpoint directory"
                )
        if "finetune" in stages and config["finetune"]["model"] == EXPORT:
            raise CohortConfigError(
                f"config finetune.model: '{EXPORT}' is the model of the pretrain stage ({export}); "
                "add pretrain to stages, or name a checkpoint directory"
            )
    if not any(stage in stages for stage in ("tracks", "finetune")) or "splits" in stages:
        return
    if not config.get("genome_sheet"):
        raise CohortConfigError(
            "config: without the splits stage the genomes come from genome_sheet; set genome_sheet "
            "or add splits to stages"
        )
    # config/config.yaml always names the demo's sheet, so a cohort of NT-list genomes that drops
    # splits would otherwise mine the demo genomes.
    if config.get("splits", {}).get("nt_list") and not any("genome_sheet" in layer for layer in cohort_layers):
        raise CohortConfigError(
            f"config splits.nt_list: only the splits stage reads the NT list; without it the genomes would be those "
            f"of the default genome_sheet {config['genome_sheet']}; add splits to stages (or set the cohort's own "
            "genome_sheet)"
        )


def check_genome_names(config: Mapping[str, Any], stages: tuple[str, ...], sheet_genomes: list[str] | None) -> None:
    """tracks.genomes / finetune.genomes must name genomes of the sheet (when the sheet is the source)."""
    if sheet_genomes is None or (config.get("splits", {}).get("nt_list") and "splits" in stages):
        return  # the genomes are known only once the NT list's splits table exists
    where = config.get("genome_sheet")
    for stage, key in (("tracks", "genomes"), ("finetune", "genomes")):
        wanted = config.get(stage, {}).get(key, "all")
        if stage not in stages or wanted == "all":
            continue
        unknown = [name for name in wanted if name not in sheet_genomes]
        if unknown:
            raise CohortConfigError(
                f"config {stage}.{key}: {', '.join(unknown)} not in the genome sheet {where} "
                f"(its genomes: {', '.join(sheet_genomes)})"
            )


def finetune_genomes(
    config: Mapping[str, Any], stages: tuple[str, ...], sheet_annotations: Mapping[str, str] | None
) -> str | None:
    """What the start of a run says about the fine-tuning example's genomes (None: nothing).

    The example labels windows with a GFF3, so it takes only genomes that have one.
    ``sheet_annotations`` is {genome: annotation path or ""} of the genome sheet when the sheet is
    the genomes' source, else None. A line beginning "warning:" means the example cannot run
    (no annotated genome, or the NT list's genomes, which come without); the run still makes the
    targets it is asked for, so this is no error. A finetune.genomes entry without an annotation is.
    """
    if "finetune" not in stages:
        return None
    wanted = config["finetune"]["genomes"]
    if config.get("splits", {}).get("nt_list") and "splits" in stages:
        return (
            "warning: finetune: the genomes of the NT list (splits.nt_list) come without GFF3 annotations, so the "
            "fine-tuning example has no windows to label; drop finetune from stages"
        )
    if sheet_annotations is None:
        return None
    annotated = [genome for genome, annotation in sheet_annotations.items() if annotation]
    where = f"the genome sheet {config.get('genome_sheet')}"
    if wanted != "all":
        bare = [genome for genome in wanted if genome not in annotated]
        if bare:
            raise CohortConfigError(
                f"config finetune.genomes: {', '.join(bare)} without an annotation (GFF3) in {where}"
            )
        return f"finetune: the {len(wanted)} genomes of finetune.genomes make the example's windows"
    if not annotated:
        return (
            f"warning: finetune: no genome of {where} has an annotation (GFF3), so the fine-tuning example has "
            "no windows to label; add an annotation column, or drop finetune from stages"
        )
    return (
        f"finetune: {len(annotated)} of {len(sheet_annotations)} genomes have an annotation (GFF3) and make "
        f"the example's windows: {', '.join(annotated)}"
    )


def check_pretrain_batch(config: Mapping[str, Any]) -> None:
    """The training settings load, and the global batch splits over nodes × processes per node."""
    from dnafm_lib.train.config import TrainConfig

    pretrain = config["pretrain"]
    settings = TrainConfig.from_mapping(pretrain["train"], where="config pretrain.train")
    world_size = pretrain["nodes"] * pretrain["nproc_per_node"]
    try:
        settings.check_world(world_size)
    except DnafmError as exc:
        raise CohortConfigError(
            f"config pretrain.train: {exc} (world size = pretrain.nodes {pretrain['nodes']} × "
            f"pretrain.nproc_per_node {pretrain['nproc_per_node']})"
        ) from None


#: the weight files a checkpoint directory may hold (dnafm_lib.model.model_dir reads them; that
#: module imports torch, which the workflow start must not pay; a test keeps the two equal)
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def check_model_directories(config: Mapping[str, Any], stages: tuple[str, ...]) -> None:
    """Checkpoint directories named by tracks.models / finetune.model hold a config.json and
    weights (before any genome is prepared, not when the first scoring job loads them)."""
    from pathlib import Path

    named = []
    if "tracks" in stages:
        named += [(f"tracks.models: {name}", source) for name, source in config["tracks"]["models"].items()]
    if "finetune" in stages:
        named.append(("finetune.model", config["finetune"]["model"]))
    for key, source in named:
        if source == EXPORT:
            continue
        if not (Path(source) / "config.json").is_file():
            raise CohortConfigError(
                f"config {key}: {source} is not a checkpoint directory (no config.json); "
                "download the checkpoint there or correct the path"
            )
        if not any((Path(source) / name).is_file() for name in WEIGHT_FILES):
            raise CohortConfigError(
                f"config {key}: {source} has a config.json but no weights ({', '.join(WEIGHT_FILES[:-1])} or "
                f"{WEIGHT_FILES[-1]}); finish the download or correct the path"
            )
