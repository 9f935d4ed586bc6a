"""The context (tokens per input, [CLS] and [EOS] included) a model was pretrained with.

``dnafm export`` writes it into config.json as ``dnafm_pretraining_context_tokens``, a field
Hugging Face and ModelGenerator ignore. A config without it is a published AIDO.DNA model,
pretrained on the model card's 4000 tokens. Scoring with longer windows than that gives
positions the model never saw in training, so the tracks commands warn once, naming both numbers.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

CONTEXT_FIELD = "dnafm_pretraining_context_tokens"
#: AIDO.DNA's model card: [CLS] + 3998 nt + [EOS]
PUBLISHED_CONTEXT_TOKENS = 4000
#: tokens a window adds around its bases
FRAME_TOKENS = 2

_warned: set[tuple[str, int]] = set()


def trained_context_tokens(model: str | Path) -> int | None:
    """The pretraining context of a checkpoint directory; None for a preset (untrained) or an unreadable config."""
    config_path = Path(model) / "config.json"
    try:
        data = json.loads(config_path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    value = data.get(CONTEXT_FIELD, PUBLISHED_CONTEXT_TOKENS)
    return value if isinstance(value, int) and value > FRAME_TOKENS else PUBLISHED_CONTEXT_TOKENS


def context_warning(model_name: str, window_bp: int, context_tokens: int | None) -> str | None:
    """The warning for scoring ``window_bp``-nt windows with a model pretrained on ``context_tokens``, or None."""
    if context_tokens is None or window_bp + FRAME_TOKENS <= context_tokens:
        return None
    return (
        f"{model_name}: scoring {window_bp}-nt windows ({window_bp + FRAME_TOKENS} tokens) with a model pretrained "
        f"on {context_tokens}-token inputs ({context_tokens - FRAME_TOKENS} nt); positions beyond its training "
        f"context may score poorly (window_bp at most {context_tokens - FRAME_TOKENS} matches it)"
    )


def warn_if_longer(model: str | Path, window_bp: int) -> str | None:
    """Log the context warning once per process and model; return it (None when the windows fit)."""
    message = context_warning(str(model), window_bp, trained_context_tokens(model))
    if message and (str(model), window_bp) not in _warned:
        _warned.add((str(model), window_bp))
        log.warning("warning: %s", message)
    return message
