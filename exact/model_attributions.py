"""Attribution maps of a trained model with the paper's Captum methods and settings (docs/models.md).

As Clark et al. 2024 call them (reference code: xai/methods.py): Saliency (absolute gradient), Integrated
Gradients, Gradient SHAP and DeepLift against an all-zero baseline, and LRP (Captum's default epsilon rules), each
for the sample's true label as target.

The paper's networks apply the softmax and the flattening as functions in ``forward``; ours are ``nn.Sequential``s
with ``nn.Flatten`` and ``nn.Softmax`` modules, which Captum's LRP has no rule for and DeepLift would treat with its
own softmax rule. Attribution therefore runs on a copy of the model whose forward applies those two as functions,
exactly as the paper's models do, with the remaining layers as modules: the same function, the same layer types
Captum sees as in the paper. The copy also keeps LRP's temporary changes (rules, hooks) off the caller's model.

Needs torch and captum (requirements-models.txt); they are imported when ``attribute`` is called.
"""

from __future__ import annotations

import copy
import warnings
from typing import TYPE_CHECKING

import numpy as np

from exact.errors import ValidationError

if TYPE_CHECKING:
    import torch

__all__ = ["MODEL_METHODS", "attribute"]

MODEL_METHODS: dict[str, str] = {
    "saliency": "Saliency",
    "integrated_gradients": "Integrated Gradients",
    "gradient_shap": "Gradient SHAP",
    "deeplift": "DeepLift",
    "lrp": "LRP",
}


def _paper_forward(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` (an ``nn.Sequential``) whose Flatten and Softmax modules are applied as functions."""
    import torch
    from torch import nn

    if not isinstance(model, nn.Sequential):
        raise ValidationError("Attributions need one of the models built by exact.networks (an nn.Sequential).")

    class PaperForward(nn.Module):
        def __init__(self, sequential: nn.Sequential) -> None:
            super().__init__()
            # Only the layers Captum should see are registered modules; the plan keeps their order.
            self.layers = nn.ModuleList()
            self.plan: list[tuple[str, int]] = []
            for layer in sequential:
                if isinstance(layer, nn.Flatten):
                    self.plan.append(("flatten", layer.start_dim))
                elif isinstance(layer, nn.Softmax):
                    self.plan.append(("softmax", layer.dim))
                else:
                    self.plan.append(("layer", len(self.layers)))
                    self.layers.append(layer)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for step, value in self.plan:
                if step == "flatten":
                    x = torch.flatten(x, value)
                elif step == "softmax":
                    x = torch.softmax(x, dim=value)
                else:
                    x = self.layers[value](x)
            return x

    return PaperForward(copy.deepcopy(model)).eval()


def attribute(
    model: torch.nn.Module,
    method: str,
    inputs: np.ndarray,
    targets: np.ndarray,
    *,
    seed: int,
    batch_size: int = 50,
    threads: int = 1,
) -> np.ndarray:
    """Attribution maps ``(n, H, W)`` float64 of ``inputs`` ``(n, H, W)`` for ``targets`` ``(n,)`` (the labels).

    ``seed`` fixes Gradient SHAP's random draws (the only random method); the same arguments give the same maps.
    Global random states (torch, NumPy) and torch's thread count are restored afterwards.
    """
    import torch
    from captum.attr import LRP, DeepLift, GradientShap, IntegratedGradients, Saliency

    if method not in MODEL_METHODS:
        raise ValidationError(f"Unknown attribution method {method!r}; choose one of {', '.join(MODEL_METHODS)}.")
    images = np.asarray(inputs)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValidationError(f"Inputs must be square images (n, H, W), not {images.shape}.")
    labels = np.asarray(targets)
    if labels.shape != (len(images),) or labels.dtype.kind not in "biu" or not np.isin(labels, (0, 1)).all():
        raise ValidationError(f"Targets must be {len(images)} class labels 0 or 1, not {labels.dtype} {labels.shape}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(f"The batch size must be a whole number of at least 1, not {batch_size!r}.")

    forward = _paper_forward(model)
    explainers = {
        "saliency": lambda x, t: Saliency(forward).attribute(x, target=t),
        "integrated_gradients": lambda x, t: IntegratedGradients(forward).attribute(
            x, target=t, baselines=torch.zeros_like(x)
        ),
        "gradient_shap": lambda x, t: GradientShap(forward).attribute(x, target=t, baselines=torch.zeros_like(x)),
        "deeplift": lambda x, t: DeepLift(forward).attribute(x, target=t, baselines=torch.zeros_like(x)),
        "lrp": lambda x, t: LRP(forward).attribute(x, target=t),
    }
    explain = explainers[method]
    x_all = torch.from_numpy(np.array(images[:, None], dtype=np.float32))
    t_all = torch.from_numpy(labels.astype(np.int64))
    maps = np.zeros(images.shape, dtype=np.float64)

    threads_before = torch.get_num_threads()
    numpy_state = np.random.get_state()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            # Gradient SHAP draws baselines and interpolation points from torch and NumPy's global generators.
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            # DeepLift announces that it hooks the ReLUs for the call; it removes them itself.
            warnings.filterwarnings("ignore", message="Setting forward, backward hooks", category=UserWarning)
            for start in range(0, len(images), batch_size):
                x = x_all[start : start + batch_size].clone().requires_grad_(True)
                result = explain(x, t_all[start : start + batch_size])
                maps[start : start + batch_size] = result.detach().numpy()[:, 0].astype(np.float64)
    finally:
        np.random.set_state(numpy_state)
        torch.set_num_threads(threads_before)
    return maps
