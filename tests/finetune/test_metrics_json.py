import json

import numpy as np

from dnafm_lib.finetune.trainer import _strict_json


def test_metrics_json_writes_undefined_metrics_as_null_so_strict_readers_accept_it():
    results = {
        "test": {"auroc": np.float64("nan"), "accuracy": np.float32(0.75), "n": np.int64(4)},
        "history": [float("inf"), 1.0],
    }
    text = json.dumps(_strict_json(results), allow_nan=False)
    assert json.loads(text) == {"test": {"auroc": None, "accuracy": 0.75, "n": 4}, "history": [None, 1.0]}
