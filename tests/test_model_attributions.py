"""exact.model_attributions: the paper's Captum methods on our models, checked against formulas and the paper's style.

Independent references: the softmax gradient of a linear model by hand (Saliency), the completeness axiom of
Integrated Gradients, and Captum run on the network written the paper's way (flattening and softmax as functions in
``forward``, training/models.py) with the same weights.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from captum.attr import LRP, DeepLift, GradientShap, IntegratedGradients, Saliency

from exact import model_attributions as ma
from exact import networks as nw
from exact.errors import ValidationError
from tests.test_networks import he_initialised

SIZED = [(name, size) for name, arch in nw.ARCHITECTURES.items() for size in arch.sizes]




def images(size: int, n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, size, size)).astype(np.float32)


def test_method_names_and_labels():
    assert ma.MODEL_METHODS == {
        "saliency": "Saliency",
        "integrated_gradients": "Integrated Gradients",
        "gradient_shap": "Gradient SHAP",
        "deeplift": "DeepLift",
        "lrp": "LRP",
    }


@pytest.mark.parametrize("method", list(ma.MODEL_METHODS))
@pytest.mark.parametrize(("name", "size"), SIZED)
def test_every_method_gives_finite_maps_on_every_architecture(name, size, method):
    n = 3 if size == 8 else 2
    maps = ma.attribute(he_initialised(name, size), method, images(size, n), np.array([0, 1, 1][:n]), seed=0)
    assert maps.shape == (n, size, size) and maps.dtype == np.float64
    assert np.isfinite(maps).all()
    assert (np.abs(maps).reshape(n, -1).max(axis=1) > 0).all()


class PaperStyle(torch.nn.Module):
    """A network written as the paper writes them: layers as modules; flattening and softmax as functions."""

    def __init__(self, sequential: torch.nn.Sequential) -> None:
        super().__init__()
        layers = list(copy.deepcopy(sequential))
        cut = [i for i, m in enumerate(layers) if isinstance(m, torch.nn.Flatten)][0]
        self.convolutional = cut > 0
        if self.convolutional:  # LLR and MLPs have no convolutional part at all (LRP refuses an empty Sequential)
            self.cnn_layers = torch.nn.Sequential(*layers[:cut])
        self.linear_layers = torch.nn.Sequential(*[m for m in layers[cut + 1 :] if not isinstance(m, torch.nn.Softmax)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.convolutional:
            x = self.cnn_layers(x)
            x = x.view(x.size(0), -1)
        return torch.softmax(self.linear_layers(x), dim=1)


def paper_call(model: PaperStyle, method: str, x: torch.Tensor, t: torch.Tensor, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    np.random.seed(seed)
    zeros = torch.zeros_like(x)
    if method == "saliency":
        return Saliency(model).attribute(x, target=t)
    if method == "integrated_gradients":
        return IntegratedGradients(model).attribute(x, target=t, baselines=zeros)
    if method == "gradient_shap":
        return GradientShap(model).attribute(x, target=t, baselines=zeros)
    if method == "deeplift":
        return DeepLift(model).attribute(x, target=t, baselines=zeros)
    return LRP(model).attribute(x, target=t)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("method", list(ma.MODEL_METHODS))
@pytest.mark.parametrize(("name", "size"), [("LLR", 8), ("MLP8by8", 8), ("CNN8by8", 8), ("CNN", 64)])
def test_same_maps_as_captum_on_the_paper_style_network(name, size, method):
    model = he_initialised(name, size, seed=4)
    reference = PaperStyle(model).eval()
    n = 4 if size == 8 else 2
    x = images(size, n, seed=2)
    targets = np.array([1, 0, 0, 1][:n])
    # As the paper feeds them: images (n, 1, H, W) to CNNs, flat vectors (n, H*W) to LLR and MLPs.
    fed = torch.from_numpy(x[:, None] if reference.convolutional else x.reshape(n, -1)).requires_grad_(True)
    expected = paper_call(reference, method, fed, torch.from_numpy(targets), seed=9).detach().numpy()
    ours = ma.attribute(model, method, x, targets, seed=9, batch_size=n)
    np.testing.assert_allclose(ours, expected.reshape(n, size, size), rtol=1e-5, atol=1e-7)


def test_saliency_of_llr_is_the_softmax_gradient_by_hand():
    model = he_initialised("LLR", 8, seed=7)
    w = model[1].weight.detach().numpy().astype(np.float64)  # (2, 64)
    x = images(8, 6, seed=3)
    targets = np.array([0, 1, 0, 1, 1, 0])
    z = x.reshape(6, 64).astype(np.float64) @ w.T
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    p_t = p[np.arange(6), targets]
    # d p_t / d x = p_t (1 - p_t) (W_t - W_other) for two classes; Saliency is its absolute value.
    by_hand = np.abs(p_t[:, None] * (1 - p_t[:, None]) * (w[targets] - w[1 - targets]))
    maps = ma.attribute(model, "saliency", x, targets, seed=0)
    np.testing.assert_allclose(maps.reshape(6, 64), by_hand, rtol=1e-4, atol=1e-8)


# 50 interpolation steps (Captum's default, as the paper) integrate the smooth LLR almost exactly; the kinks of
# ReLU and max-pool networks leave an error of a few per cent.
@pytest.mark.parametrize(("name", "size", "rtol"), [("LLR", 8, 1e-4), ("MLP8by8", 8, 0.03), ("CNN8by8", 8, 0.03)])
def test_integrated_gradients_are_complete(name, size, rtol):
    # Completeness: the attributions of a sample add up to f_t(x) - f_t(baseline), the baseline being all zeros.
    model = he_initialised(name, size, seed=5)
    x = images(size, 5, seed=4)
    targets = np.array([0, 1, 1, 0, 1])
    maps = ma.attribute(model, "integrated_gradients", x, targets, seed=0)
    rows = np.arange(5)
    difference = nw.predict(model, x)[rows, targets] - nw.predict(model, np.zeros_like(x))[rows, targets]
    assert np.abs(difference).max() > 0.05  # the check below means something
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), difference, rtol=rtol, atol=1e-6)


def test_gradient_shap_is_seeded_and_leaves_global_random_state_alone():
    model = he_initialised("MLP8by8", 8)
    x, targets = images(8, 4), np.array([0, 1, 0, 1])
    numpy_state, torch_state = np.random.get_state()[1].copy(), torch.random.get_rng_state()
    first = ma.attribute(model, "gradient_shap", x, targets, seed=1)
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    np.testing.assert_array_equal(ma.attribute(model, "gradient_shap", x, targets, seed=1), first)
    assert not np.array_equal(ma.attribute(model, "gradient_shap", x, targets, seed=2), first)


def test_batching_does_not_change_deterministic_methods():
    model = he_initialised("CNN8by8", 8)
    x, targets = images(8, 7), np.array([0, 1, 0, 1, 1, 1, 0])
    for method in ("saliency", "integrated_gradients", "deeplift", "lrp"):
        np.testing.assert_allclose(
            ma.attribute(model, method, x, targets, seed=0, batch_size=3),
            ma.attribute(model, method, x, targets, seed=0, batch_size=50),
            rtol=1e-5,
            atol=1e-8,
        )


def test_the_callers_model_is_left_untouched():
    model = he_initialised("CNN8by8", 8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, targets = images(8, 3), np.array([0, 1, 0])
    for method in ma.MODEL_METHODS:
        ma.attribute(model, method, x, targets, seed=0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    for module in model.modules():
        assert not hasattr(module, "rule")
        assert not module._forward_hooks and not module._backward_hooks and not module._forward_pre_hooks
    assert not model.training


def test_bad_arguments_are_refused():
    model = he_initialised("LLR", 8)
    with pytest.raises(ValidationError, match="Unknown attribution method 'gradcam'"):
        ma.attribute(model, "gradcam", images(8, 2), np.array([0, 1]), seed=0)
    with pytest.raises(ValidationError, match="Targets must be 2 class labels 0 or 1"):
        ma.attribute(model, "saliency", images(8, 2), np.array([0, 2]), seed=0)
    with pytest.raises(ValidationError, match="square images"):
        ma.attribute(model, "saliency", np.zeros((2, 64)), np.array([0, 1]), seed=0)
