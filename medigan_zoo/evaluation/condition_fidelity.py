"""Condition fidelity: does a sample show the condition it was asked for?

A classifier trained on the real training split (labels = the condition's values) classifies synthetic samples
made with requested labels; its accuracy on them is compared with its accuracy on the real test split (the
ceiling a real image reaches). Ratio 1 = samples carry their condition as recognisably as real images do.
"""
from __future__ import annotations

from typing import Any, Dict

import torch

from medigan_zoo.evaluation.classifiers import TrainConfig, fit_classifier, predict_proba


def condition_fidelity(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                       synthetic_x: torch.Tensor, requested: torch.Tensor, num_classes: int, seed: int = 0,
                       config: TrainConfig = TrainConfig()) -> Dict[str, Any]:
    """``accuracy_synthetic`` (requested label recovered), ``accuracy_real_test``, their ``ratio`` and the
    recovery rate per requested value (``per_condition``)."""
    model = fit_classifier(train_x, train_y, num_classes, seed=seed, config=config)
    pred_syn = predict_proba(model, synthetic_x, config.size).argmax(1)
    pred_real = predict_proba(model, test_x, config.size).argmax(1)
    acc_syn = float((pred_syn == requested.long()).double().mean())
    acc_real = float((pred_real == test_y.long()).double().mean())
    per = {str(int(v)): float((pred_syn[requested == v] == v).double().mean())
           for v in torch.unique(requested).tolist()}
    return {"accuracy_synthetic": acc_syn, "accuracy_real_test": acc_real,
            "ratio": acc_syn / acc_real if acc_real > 0 else float("nan"), "per_condition": per}
