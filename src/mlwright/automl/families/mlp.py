"""A multilayer perceptron (PyTorch) with categorical embeddings, in the style of RealMLP.

Optional: needs ``pip install 'mlwright[nn]'`` (PyTorch; ``torch==2.13.0`` is the CPU build).
Numbers are imputed (median, with a missing-value indicator), compressed where heavy-tailed,
standardised and clipped (the dense encoding the linear model uses); each categorical column
gets a learned embedding whose first row stands for missing and unseen categories. Three
hidden layers of 256 SiLU units with dropout, AdamW at a constant learning rate, early stopping
on the validation fold, and the best epoch's weights kept. Regression targets are standardised
for training.

Every random draw (initial weights, batch order, dropout masks) comes from the fit's own
generator, so two fits running in parallel threads stay reproducible with their seeds.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from mlwright.automl.families import align
from mlwright.automl.families._encode import DenseEncoder

NAME = "mlp"
ITERATIVE = True
_MAX_EPOCHS = 200
_PATIENCE = 16
_HIDDEN = 256
_DROPOUT = 0.15


def _embedding_size(cardinality: int) -> int:
    return int(min(16, max(2, round(1.6 * cardinality**0.56))))


def _network(n_numeric: int, cardinalities: list[int], n_outputs: int, params: dict, generator):
    # deferred: torch is the optional [nn] extra
    import torch
    from torch import nn

    hidden = int(params.get("hidden", _HIDDEN))
    depth = int(params.get("layers", 3))
    dropout = float(params.get("dropout", _DROPOUT))

    class Dropout(nn.Module):
        """Dropout whose masks come from the fit's generator (the global one is shared)."""

        def __init__(self, rate: float) -> None:
            super().__init__()
            self.rate = rate

        def forward(self, x):
            if not self.training or self.rate <= 0:
                return x
            keep = torch.rand(x.shape, generator=generator) >= self.rate
            return x * keep / (1 - self.rate)

    class Network(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # Index 0 of each embedding: missing or unseen category.
            self.embeddings = nn.ModuleList(
                nn.Embedding(c + 1, _embedding_size(c + 1)) for c in cardinalities
            )
            width = n_numeric + sum(e.embedding_dim for e in self.embeddings)
            layers: list[nn.Module] = []
            for _ in range(depth):
                layers += [nn.Linear(width, hidden), nn.SiLU(), Dropout(dropout)]
                width = hidden
            layers.append(nn.Linear(width, n_outputs))
            self.body = nn.Sequential(*layers)

        def forward(self, numeric, codes):
            parts = [numeric] if numeric.shape[1] else []
            parts += [embedding(codes[:, i]) for i, embedding in enumerate(self.embeddings)]
            return self.body(torch.cat(parts, dim=1))

    network = Network()
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, nn.Linear):
                bound = 1.0 / math.sqrt(module.in_features)
                module.weight.uniform_(-bound, bound, generator=generator)
                module.bias.uniform_(-bound, bound, generator=generator)
            elif isinstance(module, nn.Embedding):
                module.weight.normal_(0.0, 1.0, generator=generator)
    return network


def _shape_params(params: dict) -> dict:
    """The parameters that shape the network (what rebuilding it needs)."""
    return {
        "hidden": int(params.get("hidden", _HIDDEN)),
        "layers": int(params.get("layers", 3)),
        "dropout": float(params.get("dropout", _DROPOUT)),
    }


class _Fitted:
    """A trained network kept as plain data: its shape and its weights.

    The network's classes are built inside :func:`_network` (PyTorch is imported only when the
    family is used), so they cannot be pickled by name; the artifact stores the shape and the
    state dict, and the network is rebuilt (in evaluation mode) on first use after loading.
    """

    def __init__(self, network, shape: tuple, encoder, n_classes: int, center, scale) -> None:
        self.shape = shape
        self.state = {key: value.detach().clone() for key, value in network.state_dict().items()}
        self.encoder = encoder
        self.n_classes = n_classes
        self.center = center
        self.scale = scale
        self._network = network

    def network(self):
        if self._network is None:
            # deferred: torch is the optional [nn] extra
            import torch

            n_numeric, cardinalities, n_outputs, params = self.shape
            network = _network(n_numeric, cardinalities, n_outputs, params, torch.Generator())
            network.load_state_dict(self.state)
            network.eval()
            self._network = network
        return self._network

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_network"] = None
        return state


class _Encoder:
    """Numbers through the dense encoding; categorical codes shifted so 0 means missing."""

    def __init__(self, categorical: list[int]) -> None:
        self.categorical = list(categorical)

    def fit(self, X: np.ndarray) -> _Encoder:
        self.dense = DenseEncoder([], 0).fit(np.delete(X, self.categorical, axis=1))
        self.cardinalities = [
            int(np.nanmax(X[:, i])) + 1 if np.isfinite(X[:, i]).any() else 1
            for i in self.categorical
        ]
        return self

    def transform(self, X: np.ndarray):
        # deferred: torch is the optional [nn] extra
        import torch

        numeric = self.dense.transform(np.delete(X, self.categorical, axis=1))
        codes = np.zeros((len(X), len(self.categorical)), dtype=np.int64)
        pairs = zip(self.categorical, self.cardinalities, strict=True)
        for j, (i, cardinality) in enumerate(pairs):
            column = X[:, i]
            known = np.isfinite(column) & (column >= 0) & (column < cardinality)
            codes[known, j] = column[known].astype(np.int64) + 1
        return (
            torch.as_tensor(numeric, dtype=torch.float32),
            torch.as_tensor(codes, dtype=torch.int64),
        )


def _loss_function(task: str):
    # deferred: torch is the optional [nn] extra
    from torch import nn

    return nn.MSELoss() if task == "regression" else nn.CrossEntropyLoss()


def fit(
    X: np.ndarray,
    y: np.ndarray,
    *,
    task: str,
    n_classes: int,
    categorical: list[int],
    params: dict[str, Any],
    seed: int,
    n_threads: int,
    deadline: float,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    n_iterations: int | None = None,
) -> tuple[Any, int]:
    """Train for up to ``n_iterations`` epochs, or early-stop on the validation rows."""
    # deferred: torch is the optional [nn] extra
    import torch

    torch.set_num_threads(max(1, int(n_threads)))
    generator = torch.Generator().manual_seed(int(seed))
    encoder = _Encoder(categorical).fit(X)
    numeric, codes = encoder.transform(X)
    if task == "regression":
        center, scale = float(np.mean(y)), float(np.std(y) or 1.0)
        target = torch.as_tensor((y - center) / scale, dtype=torch.float32).reshape(-1, 1)
    else:
        center, scale = 0.0, 1.0
        target = torch.as_tensor(y, dtype=torch.int64)
    n_outputs = 1 if task == "regression" else max(n_classes, 2)
    network = _network(numeric.shape[1], encoder.cardinalities, n_outputs, params, generator)
    loss_function = _loss_function(task)
    validation = None
    if X_val is not None and n_iterations is None:
        val_numeric, val_codes = encoder.transform(X_val)
        if task == "regression":
            val_target = torch.as_tensor((y_val - center) / scale, dtype=torch.float32)
            val_target = val_target.reshape(-1, 1)
        else:
            val_target = torch.as_tensor(y_val, dtype=torch.int64)
        validation = (val_numeric, val_codes, val_target)
    epochs = int(n_iterations or params.get("epochs", _MAX_EPOCHS))
    batch = int(params.get("batch_size", min(512, max(32, 2 ** round(math.log2(len(X) / 16))))))
    # A constant learning rate: the refit on all rows then retraces the folds' trajectory for
    # the number of epochs they found best (a schedule tied to the epoch budget would not).
    optimizer = torch.optim.AdamW(
        network.parameters(),
        lr=float(params.get("learning_rate", 1e-3)),
        weight_decay=float(params.get("weight_decay", 1e-4)),
    )
    best_loss, best_epoch, best_state = math.inf, 0, None
    done = 0
    for epoch in range(epochs):
        network.train()
        order = torch.randperm(len(X), generator=generator)
        for start in range(0, len(X), batch):
            index = order[start : start + batch]
            optimizer.zero_grad()
            loss = loss_function(network(numeric[index], codes[index]), target[index])
            loss.backward()
            optimizer.step()
        done = epoch + 1
        if validation is not None:
            network.eval()
            with torch.no_grad():
                val_loss = float(loss_function(network(*validation[:2]), validation[2]))
            if val_loss < best_loss - 1e-6:
                best_loss, best_epoch = val_loss, done
                best_state = {k: v.clone() for k, v in network.state_dict().items()}
            elif done - best_epoch >= _PATIENCE:
                break
        if time.monotonic() > deadline:
            break
    if best_state is not None:
        network.load_state_dict(best_state)
        done = best_epoch
    network.eval()
    shape = (numeric.shape[1], encoder.cardinalities, n_outputs, _shape_params(params))
    return _Fitted(network, shape, encoder, n_classes, center, scale), int(max(done, 1))


def predict(model: Any, X: np.ndarray, *, task: str, n_threads: int = 1) -> np.ndarray:
    """Class probabilities (n, k) for classification, values for regression."""
    # deferred: torch is the optional [nn] extra
    import torch

    numeric, codes = model.encoder.transform(X)
    center, scale, n_classes = model.center, model.scale, model.n_classes
    with torch.no_grad():
        output = model.network()(numeric, codes)
        if task == "regression":
            return output[:, 0].numpy().astype(float) * scale + center
        proba = torch.softmax(output, dim=1).numpy().astype(float)
    return align(proba, np.arange(proba.shape[1]), n_classes)


def suggest(trial: Any, task: str, n_rows: int) -> dict[str, Any]:
    """Optuna search space."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 3e-4, 1e-2, log=True),
        "hidden": trial.suggest_categorical("hidden", [128, 256, 512]),
        "layers": trial.suggest_int("layers", 2, 4),
        "dropout": trial.suggest_float("dropout", 0.0, 0.4),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
    }


def cost(
    iterations: int,
    params: dict[str, Any],
    n_outputs: int,
    n_rows: int,
    *,
    n_features: int = 0,
    n_categorical: int = 0,
):
    """Estimated prediction cost: (single-row milliseconds, batch microseconds per row)."""
    hidden = int(params.get("hidden", _HIDDEN))
    depth = int(params.get("layers", 3))
    multiply_adds = n_features * hidden + (depth - 1) * hidden * hidden + hidden * n_outputs
    # A forward pass costs ~0.15 ms of framework overhead, then ~1 ns per multiply-add.
    return 0.15 + 1e-6 * multiply_adds, 0.5 + 1e-3 * multiply_adds
