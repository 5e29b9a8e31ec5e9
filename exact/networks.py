"""The trained models of XAI-TRIS benchmarks: architectures, training, and safe file formats (docs/models.md).

After Clark et al. 2024 (reference code: github.com/braindatalab/xai-tris, training/models.py and
training/train_models.py); an independent implementation. Every model is a plain ``torch.nn.Sequential`` of
standard layers that takes images ``(n, 1, H, W)`` float32 and returns class probabilities ``(n, 2)``, so anyone can
rebuild it in one line of PyTorch (``pytorch_expression``) and load the published weights without this package.

Files: weights as safetensors (a JSON header and raw tensors; loading runs no code) and the whole graph as ONNX
(checked here, run with onnxruntime). Pickle-based files (``.pt``, ``.pth``, ``.pkl``) are refused by sniffing their
first bytes: loading them runs code from the file, so nothing here ever unpickles.

PyTorch is an optional install (requirements-models.txt): this module imports without it; ``ARCHITECTURES``,
``paper_architectures``, ``pytorch_expression`` and ``pytorch_snippet`` need no torch, everything else imports it
when called. ``models_available()`` says whether the extra is there.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import math
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from exact.errors import ValidationError

if TYPE_CHECKING:
    import torch

__all__ = [
    "ARCHITECTURES",
    "MAX_MODEL_BYTES",
    "Architecture",
    "TrainingOutcome",
    "TrainingSettings",
    "accuracy",
    "build",
    "check_onnx",
    "load_safetensors",
    "onnx_bytes",
    "paper_architectures",
    "predict",
    "predict_onnx",
    "pytorch_expression",
    "pytorch_snippet",
    "safetensors_bytes",
    "models_available",
    "train",
]

# The largest paper model (MLP at 64 x 64, 1.1 M float32 weights) is 4.5 MB; anything far larger is not one of ours.
MAX_MODEL_BYTES = 64 * 1024 * 1024
ONNX_OPSET = 17
ONNX_INPUT = "x"
ONNX_OUTPUT = "probabilities"
# The default ONNX operator set; anything else would need a custom operator library to run.
_ONNX_DEFAULT_DOMAINS = ("", "ai.onnx")
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
# Batches for inference: bounds memory at 64 x 64 without changing results.
_PREDICT_BATCH = 1024


_MODEL_PACKAGES = ("torch", "captum", "safetensors", "onnx", "onnxruntime")


def models_available() -> bool:
    """Whether the optional model extra (requirements-models.txt) is installed, so this installation can train,
    load, export and attribute models. Looked up without importing torch, which takes seconds and memory the web
    process does not need."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in _MODEL_PACKAGES)
    except (ImportError, ValueError):  # a package present but broken, or blocked in sys.modules
        return False


# --- Architectures ---------------------------------------------------------------------------------------------

# A layer as data: (torch.nn class name, positional arguments, keyword arguments). One description feeds the
# module (build), its one-line PyTorch source (pytorch_expression) and the parameter count (no torch needed).
Layer = tuple[str, tuple[int, ...], tuple[tuple[str, Any], ...]]


def _linear(n_in: int, n_out: int, *, bias: bool) -> Layer:
    return ("Linear", (n_in, n_out), () if bias else (("bias", False),))


def _conv(c_in: int, c_out: int, kernel: int) -> Layer:
    return ("Conv2d", (c_in, c_out), (("kernel_size", kernel), ("stride", 1), ("padding", 1)))


_RELU: Layer = ("ReLU", (), ())
_FLATTEN: Layer = ("Flatten", (), ())
_SOFTMAX: Layer = ("Softmax", (), (("dim", 1),))
_DROPOUT: Layer = ("Dropout", (), (("p", 0.3),))
_POOL: Layer = ("MaxPool2d", (), (("kernel_size", 2), ("stride", 2)))


def _llr(size: int) -> list[Layer]:
    return [_FLATTEN, _linear(size * size, 2, bias=False), _SOFTMAX]


def _mlp(size: int) -> list[Layer]:
    widths = [size * size, 256, 256, 64]
    layers: list[Layer] = [_FLATTEN]
    for n_in, n_out in zip(widths, widths[1:], strict=False):
        layers += [_linear(n_in, n_out, bias=False), _RELU, _DROPOUT]
    return [*layers, _linear(64, 2, bias=False), _SOFTMAX]


def _mlp8by8(size: int) -> list[Layer]:
    n = size * size
    widths = [n, n // 2, n // 4, n // 8]
    layers: list[Layer] = [_FLATTEN]
    for n_in, n_out in zip(widths, widths[1:], strict=False):
        layers += [_linear(n_in, n_out, bias=True), _RELU]
    return [*layers, _linear(n // 8, 2, bias=True), _SOFTMAX]


def _conv_side(side: int, kernel: int) -> int:
    """Side after a stride-1, padding-1 convolution and a 2 x 2 max-pool (floor), as PyTorch computes it."""
    return (side + 2 - kernel + 1) // 2


def _cnn_layers(size: int, channels: list[int], kernel: int, *, bias: bool) -> list[Layer]:
    layers: list[Layer] = []
    side = size
    for c_in, c_out in zip(channels, channels[1:], strict=False):
        layers += [_conv(c_in, c_out, kernel), _RELU, _POOL]
        side = _conv_side(side, kernel)
    # 288 = 32 x 3 x 3 at 64 x 64 (kernel 4); 4 = 4 x 1 x 1 at 8 x 8 (kernel 2): the paper's linear_dim.
    return [*layers, _FLATTEN, _linear(channels[-1] * side * side, 2, bias=bias), _SOFTMAX]


def _cnn(size: int) -> list[Layer]:
    return _cnn_layers(size, [1, 4, 8, 16, 32], 4, bias=False)


def _cnn8by8(size: int) -> list[Layer]:
    return _cnn_layers(size, [1, 4, 4, 4, 4], 2, bias=True)


@dataclass(frozen=True)
class Architecture:
    """One of the paper's networks. ``sizes``: image sides (pixels) it is defined for."""

    name: str
    label: str
    sizes: tuple[int, ...]
    description: str
    _layers: Callable[[int], list[Layer]]

    def layers(self, size: int) -> list[Layer]:
        if size not in self.sizes:
            allowed = " or ".join(f"{s}x{s}" for s in self.sizes)
            raise ValidationError(f"The {self.name} architecture is defined for {allowed} images, not {size}x{size}.")
        return self._layers(size)

    def parameter_count(self, size: int) -> int:
        """Number of trainable numbers (weights and biases), computed from the layer description."""
        total = 0
        for kind, args, kwargs in self.layers(size):
            options = dict(kwargs)
            bias = options.get("bias", True)
            if kind == "Linear":
                n_in, n_out = args
                total += n_in * n_out + (n_out if bias else 0)
            elif kind == "Conv2d":
                c_in, c_out = args
                total += c_out * c_in * options["kernel_size"] ** 2 + (c_out if bias else 0)
        return total


ARCHITECTURES: dict[str, Architecture] = {
    "LLR": Architecture(
        "LLR",
        "Linear logistic regression",
        (8, 64),
        "One linear layer (no bias) and a softmax over the 2 classes.",
        _llr,
    ),
    "MLP": Architecture(
        "MLP",
        "Multi-layer perceptron (64x64)",
        (64,),
        "Linear layers 4096-256-256-64-2 without bias, ReLU and dropout 0.3 between them, softmax.",
        _mlp,
    ),
    "CNN": Architecture(
        "CNN",
        "Convolutional network (64x64)",
        (64,),
        "Four blocks of 4x4 convolution (1-4-8-16-32 channels), ReLU, 2x2 max-pool; a linear layer 288-2 without "
        "bias, softmax.",
        _cnn,
    ),
    "MLP8by8": Architecture(
        "MLP8by8",
        "Multi-layer perceptron (8x8)",
        (8,),
        "Linear layers 64-32-16-8-2 with bias, ReLU between them, softmax.",
        _mlp8by8,
    ),
    "CNN8by8": Architecture(
        "CNN8by8",
        "Convolutional network (8x8)",
        (8,),
        "Four blocks of 2x2 convolution (1-4-4-4-4 channels), ReLU, 2x2 max-pool; a linear layer 4-2, softmax.",
        _cnn8by8,
    ),
}


def _architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ValidationError(f"Unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}.")
    return ARCHITECTURES[name]


def paper_architectures(scenario: str, size: int) -> tuple[str, ...]:
    """The networks the paper trains on a benchmark: LLR only for ``linear``; MLP and CNN of the image size."""
    if size not in (8, 64):
        raise ValidationError(f"Image size must be 8 or 64 (pixels per side), not {size!r}.")
    sized = ("MLP8by8", "CNN8by8") if size == 8 else ("MLP", "CNN")
    return (("LLR",) if scenario == "linear" else ()) + sized


def pytorch_expression(architecture: str, size: int) -> str:
    """Plain-PyTorch source (``torch.nn`` only) that builds exactly the module ``build`` returns."""
    parts = []
    for kind, args, kwargs in _architecture(architecture).layers(size):
        arguments = [repr(a) for a in args] + [f"{key}={value!r}" for key, value in kwargs]
        parts.append(f"torch.nn.{kind}({', '.join(arguments)})")
    return f"torch.nn.Sequential({', '.join(parts)})"


def pytorch_snippet(architecture: str, size: int, file_name: str) -> str:
    """Three lines that rebuild the model and load its safetensors weights, without this package."""
    return (
        "import safetensors.torch, torch\n"
        f"model = {pytorch_expression(architecture, size)}.eval()\n"
        f"model.load_state_dict(safetensors.torch.load_file({file_name!r}))\n"
    )


def build(architecture: str, size: int) -> torch.nn.Module:
    """A fresh, untrained module (PyTorch's default initialisation): ``(n, 1, H, W)`` in, ``(n, 2)`` out."""
    from torch import nn

    layers = _architecture(architecture).layers(size)
    return nn.Sequential(*(getattr(nn, kind)(*args, **dict(kwargs)) for kind, args, kwargs in layers))


def _expected_tensors(architecture: str, size: int) -> dict[str, tuple[int, ...]]:
    return {name: tuple(t.shape) for name, t in build(architecture, size).state_dict().items()}


# --- Inputs ----------------------------------------------------------------------------------------------------


def _images(x: np.ndarray | torch.Tensor, size: int | None = None) -> np.ndarray:
    """``(n, H, W)`` or ``(n, 1, H, W)`` as a float32 ``(n, 1, H, W)`` array."""
    array = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4 or array.shape[1] != 1 or array.shape[2] != array.shape[3]:
        raise ValidationError(f"Inputs must be square images (n, H, W) or (n, 1, H, W), not {array.shape}.")
    if size is not None and array.shape[2] != size:
        raise ValidationError(f"Inputs must be {size}x{size} images, not {array.shape[2]}x{array.shape[3]}.")
    if array.dtype.kind not in "biuf":
        raise ValidationError(f"Inputs must be real numbers, not {array.dtype}.")
    return np.array(array, dtype=np.float32, order="C")  # a copy: torch wants writable memory


def _labels(y: np.ndarray | torch.Tensor, n: int) -> np.ndarray:
    array = np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y)
    if array.shape != (n,) or array.dtype.kind not in "biu" or not np.isin(array, (0, 1)).all():
        raise ValidationError(f"Labels must be {n} integers 0 or 1 (one per image), not {array.dtype} {array.shape}.")
    return array.astype(np.int64)


def _batch_starts(n: int) -> range:
    return range(0, n, _PREDICT_BATCH)


def predict(model: torch.nn.Module, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Class probabilities ``(n, 2)`` float64, in eval mode (no dropout); the model's mode is restored."""
    import torch

    images = _images(x)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = [model(torch.from_numpy(images[i : i + _PREDICT_BATCH])) for i in _batch_starts(len(images))]
    finally:
        model.train(was_training)
    if not out:
        return np.zeros((0, 2))
    return torch.cat(out).numpy().astype(np.float64)


def accuracy(model: torch.nn.Module, x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
    """Share of images whose most probable class is the label."""
    probabilities = predict(model, x)
    labels = _labels(y, len(probabilities))
    return float(np.mean(np.argmax(probabilities, axis=1) == labels)) if len(labels) else 0.0


# --- Training --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingSettings:
    """The paper's set-up (training/training_config.json) except ``seed`` and ``threads``."""

    seed: int
    epochs: int = 500
    batch_size: int = 512
    learning_rate: float = 5e-4
    patience: int = 400
    threads: int = 1

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "patience", "threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValidationError(f"Training setting {name} must be a whole number of at least 1, not {value!r}.")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed < 2**63:
            raise ValidationError(f"The training seed must be a whole number from 0 to 2**63 - 1, not {self.seed!r}.")
        rate = self.learning_rate
        if not isinstance(rate, float | int) or not math.isfinite(rate) or not 0 < rate < 1:
            raise ValidationError(f"The learning rate must be a number between 0 and 1, not {rate!r}.")


@dataclass(frozen=True, eq=False)
class TrainingOutcome:
    """The kept model (lowest validation loss, eval mode) and how training went. Epochs count from 1."""

    model: torch.nn.Module
    architecture: str
    size: int
    epochs_run: int
    best_epoch: int
    best_validation_loss: float
    train_accuracy: float
    validation_accuracy: float


def _he_normal(module: torch.nn.Module) -> None:
    from torch import nn

    if isinstance(module, nn.Conv2d | nn.Linear):
        nn.init.kaiming_normal_(module.weight)


def _batch_losses(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    import torch

    criterion = torch.nn.CrossEntropyLoss()
    with torch.no_grad():
        return float(sum(criterion(model(x[i : i + batch_size]), y[i : i + batch_size]).item()
                         for i in range(0, len(x), batch_size)))


def train(
    architecture: str,
    size: int,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    settings: TrainingSettings,
    progress: Callable[[int, int], None] | None = None,
) -> TrainingOutcome:
    """Train one network as the paper does; the same arguments give bit-for-bit the same weights.

    He-normal weights, Adam, shuffled mini-batches, cross-entropy, early stopping counted as the paper's code
    counts it; the model kept is the one of the epoch with the lowest validation loss summed over its batches
    (ties: the later epoch). ``progress(epoch, epochs)`` is called after every epoch. Torch's global random state
    and thread count are restored afterwards.
    """
    import torch

    settings.validate()
    _architecture(architecture).layers(size)  # refuses an unknown pair before any work
    xt = torch.from_numpy(_images(x_train, size))
    yt = torch.from_numpy(_labels(y_train, len(xt)))
    xv = torch.from_numpy(_images(x_val, size))
    yv = torch.from_numpy(_labels(y_val, len(xv)))
    if len(xt) == 0 or len(xv) == 0:
        raise ValidationError("Training needs at least one training and one validation image.")

    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            model = build(architecture, size)
            model.apply(_he_normal)
            shuffle = torch.Generator().manual_seed(settings.seed)
            optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
            # The paper applies CrossEntropyLoss (which takes logits) to the softmax output, so the loss is a
            # softmax of probabilities ("double softmax"). Replicated on purpose: it shapes the trained weights.
            criterion = torch.nn.CrossEntropyLoss()
            best_loss = math.inf
            best_state = copy.deepcopy(model.state_dict())
            best_epoch = 0
            stale = 0
            validation_batches = math.ceil(len(xv) / settings.batch_size)
            epoch = 0
            for epoch in range(1, settings.epochs + 1):
                model.train()
                order = torch.randperm(len(xt), generator=shuffle)
                for start in range(0, len(xt), settings.batch_size):
                    batch = order[start : start + settings.batch_size]
                    optimizer.zero_grad()
                    loss = criterion(model(xt[batch]), yt[batch])
                    loss.backward()
                    optimizer.step()
                # Validation in eval mode (the paper left dropout on here); the loss summed over batches as the paper.
                model.eval()
                val_loss = _batch_losses(model, xv, yv, settings.batch_size)
                if val_loss <= best_loss:
                    best_loss, best_epoch = val_loss, epoch
                    best_state = copy.deepcopy(model.state_dict())
                # The paper counts an epoch as stale when its *mean* batch loss exceeds the lowest *summed* one
                # (training/train_models.py divides after comparing). Replicated on purpose: with two or more
                # validation batches it practically never stops early, and which epoch is kept depends on it.
                stale = stale + 1 if val_loss / validation_batches > best_loss else 0
                if progress is not None:
                    progress(epoch, settings.epochs)
                if stale >= settings.patience:
                    break
            kept = build(architecture, size)  # inside the fork: building draws default initial weights
            kept.load_state_dict(best_state)
            kept.eval()
    finally:
        torch.set_num_threads(threads)

    return TrainingOutcome(
        model=kept,
        architecture=architecture,
        size=size,
        epochs_run=epoch,
        best_epoch=best_epoch,
        best_validation_loss=best_loss,
        train_accuracy=accuracy(kept, xt, yt),
        validation_accuracy=accuracy(kept, xv, yv),
    )


# --- Files -----------------------------------------------------------------------------------------------------

_NEEDS_CODE = (
    "This looks like a PyTorch .pt/.pth file or a pickle (.pkl): loading those runs code from the file, so Exact "
    "never opens them (it needs code to load). Upload the weights as safetensors "
    "(safetensors.torch.save_file(model.state_dict(), 'model.safetensors')) or the model as ONNX (docs/models.md)."
)


def _looks_like_safetensors(data: bytes) -> bool:
    """An 8-byte little-endian header length that fits the file, then a JSON object."""
    if len(data) < 10:
        return False
    (header_length,) = struct.unpack("<Q", data[:8])
    return 2 <= header_length <= len(data) - 8 and data[8:9] == b"{"


def _looks_like_code(data: bytes) -> bool:
    """Zip (torch.save's format since 1.6) or a pickle of protocol 2 or later (older torch.save, pickle.dump).

    A safetensors file whose header is 640 bytes long starts with b"\x80\x02" too, like a protocol-2 pickle: a file
    shaped like safetensors is read as one (as data, never unpickled), whatever its first two bytes.
    """
    if _looks_like_safetensors(data):
        return False
    return data[:4] in _ZIP_MAGICS or (len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5)


def _check_size(data: bytes, what: str) -> None:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValidationError(f"The {what} must be given as bytes.")
    if len(data) > MAX_MODEL_BYTES:
        raise ValidationError(f"The {what} is {len(data):,} bytes; at most {MAX_MODEL_BYTES:,} are accepted.")
    if _looks_like_code(bytes(data)):
        raise ValidationError(_NEEDS_CODE)


def safetensors_bytes(model: torch.nn.Module, metadata: dict[str, str]) -> bytes:
    """The model's weights as a safetensors file; ``metadata`` must name its ``architecture`` and ``size``."""
    import safetensors.torch

    architecture, size = metadata.get("architecture"), metadata.get("size")
    if architecture not in ARCHITECTURES or not str(size).isdigit():
        raise ValueError("metadata must name the architecture and the image size")
    state = {name: t.detach().contiguous() for name, t in model.state_dict().items()}
    expected = _expected_tensors(str(architecture), int(str(size)))
    if {k: tuple(v.shape) for k, v in state.items()} != expected:
        raise ValueError(f"the model's tensors do not match {architecture} at {size}x{size}")
    return safetensors.torch.save(state, metadata={"format": "pt", **{str(k): str(v) for k, v in metadata.items()}})


def _safetensors_header(data: bytes) -> dict[str, Any]:
    not_safetensors = "The weights file is not a safetensors file (it should start with a JSON header)."
    if len(data) < 10:
        raise ValidationError(not_safetensors)
    (header_length,) = struct.unpack("<Q", data[:8])
    if not 2 <= header_length <= len(data) - 8:
        raise ValidationError(not_safetensors)
    raw = bytes(data[8 : 8 + header_length])
    if not raw.startswith(b"{"):
        raise ValidationError(not_safetensors)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise ValidationError(not_safetensors) from None
    if not isinstance(header, dict):
        raise ValidationError(not_safetensors)
    return header


def load_safetensors(data: bytes, architecture: str, size: int) -> torch.nn.Module:
    """The declared architecture with the file's weights, in eval mode; refuses anything that does not match.

    The header is read and compared with the architecture (names, float32, shapes) before any tensor is.
    """
    import safetensors.torch
    import torch

    _check_size(data, "weights file")
    data = bytes(data)
    header = _safetensors_header(data)
    expected = _expected_tensors(architecture, size)
    metadata = header.pop("__metadata__", None) or {}
    declared = metadata.get("architecture") if isinstance(metadata, dict) else None
    if declared is not None and (declared != architecture or str(metadata.get("size", size)) != str(size)):
        raise ValidationError(
            f"The weights file says it holds {declared} at {metadata.get('size')}x{metadata.get('size')}, "
            f"not {architecture} at {size}x{size}."
        )
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    if missing or unexpected:
        details = []
        if missing:
            details.append("missing " + ", ".join(missing))
        if unexpected:
            details.append("unexpected " + ", ".join(unexpected[:10]) + (" …" if len(unexpected) > 10 else ""))
        raise ValidationError(
            f"The weights file does not hold the tensors of {architecture} at {size}x{size}: {'; '.join(details)}."
        )
    for name, shape in expected.items():
        entry = header[name]
        if not isinstance(entry, dict) or entry.get("dtype") != "F32":
            found = entry.get("dtype") if isinstance(entry, dict) else entry
            raise ValidationError(f"Tensor {name} must be float32 (F32), not {found}.")
        if tuple(entry.get("shape", ())) != shape:
            raise ValidationError(
                f"Tensor {name} has shape {tuple(entry.get('shape', ()))}; "
                f"{architecture} at {size}x{size} needs {shape}."
            )
    try:
        tensors = safetensors.torch.load(data)
    except Exception as exc:  # safetensors' own checks (offsets, lengths): a broken file
        raise ValidationError(f"The weights file is damaged: {exc}") from None
    for name, tensor in tensors.items():
        if not torch.isfinite(tensor).all():
            raise ValidationError(f"Tensor {name} holds NaN or infinite values.")
    model = build(architecture, size)
    model.load_state_dict(tensors, strict=True)
    return model.eval()


def onnx_bytes(model: torch.nn.Module, size: int) -> bytes:
    """The whole model as ONNX: input ``x`` ``(n, 1, size, size)`` float32, output ``probabilities`` ``(n, 2)``."""
    import torch

    exported = copy.deepcopy(model).eval()
    buffer = io.BytesIO()
    example = torch.zeros((1, 1, size, size), dtype=torch.float32)
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs onnxscript (not installed).
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            exported,
            (example,),
            buffer,
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT],
            dynamic_axes={ONNX_INPUT: {0: "n"}, ONNX_OUTPUT: {0: "n"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    return buffer.getvalue()


def _graphs(graph: Any) -> list[Any]:
    """A graph and every subgraph in its nodes' attributes (If/Loop/Scan bodies)."""
    found = [graph]
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("g"):
                found += _graphs(attribute.g)
            for sub in attribute.graphs:
                found += _graphs(sub)
    return found


def _tensors(graph: Any) -> list[Any]:
    tensors = list(graph.initializer) + [s.values for s in graph.sparse_initializer]
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                tensors.append(attribute.t)
            tensors += list(attribute.tensors)
    return tensors


def _dims(value_info: Any) -> tuple[int, list[Any]] | None:
    tensor_type = value_info.type.tensor_type if value_info.type.HasField("tensor_type") else None
    if tensor_type is None or not tensor_type.HasField("shape"):
        return None
    return tensor_type.elem_type, list(tensor_type.shape.dim)


def _fixed(dim: Any) -> int | None:
    return dim.dim_value if dim.HasField("dim_value") else None


def check_onnx(data: bytes, size: int) -> None:
    """Refuse an ONNX file that is not a self-contained, standard-operator model from ``(n, 1, H, W)`` to ``(n, 2)``.

    Checks, in order: not a pickle/zip, parses as ONNX, no external data, no model-local functions, only the default
    operator domain, passes onnx.checker, the declared input and output, and a trial run in onnxruntime.
    """
    import onnx
    from google.protobuf.message import DecodeError

    _check_size(data, "ONNX file")
    data = bytes(data)
    not_onnx = "The file is not an ONNX model."
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError):
        raise ValidationError(not_onnx) from None
    if model.ir_version < 3 or not model.graph.node or not model.opset_import:
        raise ValidationError(not_onnx)
    graphs = _graphs(model.graph)
    for graph in graphs:
        for tensor in _tensors(graph):
            if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
                raise ValidationError("The ONNX model refers to external data files; embed all weights in the file.")
    if model.functions:
        raise ValidationError("The ONNX model defines its own functions; only standard ai.onnx operators are accepted.")
    custom = sorted(
        {o.domain for o in model.opset_import if o.domain not in _ONNX_DEFAULT_DOMAINS}
        | {n.domain for g in graphs for n in g.node if n.domain not in _ONNX_DEFAULT_DOMAINS}
    )
    if custom:
        raise ValidationError(
            f"The ONNX model uses operators outside the standard ai.onnx set ({', '.join(custom)}); they would need "
            "custom code to run."
        )
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as exc:
        raise ValidationError(f"The ONNX model is not valid: {' '.join(str(exc).split())[:300]}") from None

    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    wanted = f"one float32 input of shape (n, 1, {size}, {size}) and one float32 output of shape (n, 2)"
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise ValidationError(
            f"The ONNX model has {len(inputs)} input(s) and {len(model.graph.output)} output(s); it needs {wanted}."
        )
    declared_in, declared_out = _dims(inputs[0]), _dims(model.graph.output[0])
    in_ok = (
        declared_in is not None
        and declared_in[0] == onnx.TensorProto.FLOAT
        and len(declared_in[1]) == 4
        and _fixed(declared_in[1][0]) in (None, 0)  # a batch of any size
        and [_fixed(d) for d in declared_in[1][1:]] == [1, size, size]
    )
    out_ok = (
        declared_out is not None
        and declared_out[0] == onnx.TensorProto.FLOAT
        and len(declared_out[1]) == 2
        and _fixed(declared_out[1][1]) == 2
    )
    if not in_ok or not out_ok:
        raise ValidationError(f"The ONNX model's input or output shape is wrong: it needs {wanted}.")
    try:
        trial = predict_onnx(data, np.zeros((3, size, size), dtype=np.float32))
    except Exception as exc:  # onnxruntime refuses or fails: the model cannot be run as declared
        raise ValidationError(f"The ONNX model does not run: {' '.join(str(exc).split())[:300]}") from None
    if trial.shape != (3, 2):
        raise ValidationError(f"The ONNX model returned shape {trial.shape} for 3 images; it needs {wanted}.")


def predict_onnx(data: bytes, x: np.ndarray) -> np.ndarray:
    """Run an ONNX model (checked with ``check_onnx`` first) on images; probabilities ``(n, 2)`` float64."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(bytes(data), sess_options=options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    images = _images(x)
    outputs = [session.run(None, {name: images[i : i + _PREDICT_BATCH]})[0] for i in _batch_starts(len(images))]
    return np.concatenate(outputs).astype(np.float64) if outputs else np.zeros((0, 2))
