"""dnafm: genome mining with the DNA FM encoder.

Public contract: ``load_model(path_or_preset)`` and ``save_model(model, path)``.
Heavy imports (torch) happen on first use, so ``dnafm --help`` stays fast.
"""

__version__ = "0.1.0"

__all__ = ["load_model", "save_model", "__version__"]


def load_model(path_or_preset, **kwargs):
    from dnafm_lib.model.model_dir import load_model as _load

    return _load(path_or_preset, **kwargs)


def save_model(model, path, **kwargs):
    from dnafm_lib.model.model_dir import save_model as _save

    return _save(model, path, **kwargs)


load_model.__doc__ = "Load a preset (tiny, 300m, 7b) or an AIDO.DNA-layout checkpoint directory; see dnafm_lib.model.model_dir.load_model."
save_model.__doc__ = (
    "Write config.json + model.safetensors in the AIDO.DNA layout; see dnafm_lib.model.model_dir.save_model."
)
