"""The zoo's medical-image feature extractor: a small CNN trained to tell data set and class apart.

``MedFeatureNet`` takes 3 x 32 x 32 images in [0, 1] (gray replicated to RGB) and predicts one of the joint
(data set, class) labels of ``JOINT_LABELS``: PneumoniaMNIST, BreastMNIST, RetinaMNIST, brain MRI slices (series
type) and AdrenalMNIST3D slices. Its 128-d global-average-pooled activations are the features used for FID and
precision/recall. DermaMNIST is left out on purpose: its CC BY-NC license would make the extractor non-commercial.

The bundle ``bundles/medmnist_feature_extractor`` ships it; its configs/train.json calls
:func:`build_split` and :func:`finalize` (test accuracy per data set, model.pt, model.ts).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from medigan_zoo.evaluation.data import BRAIN_CLASS_NAMES, RealData, load_brain_slices, load_medmnist
from medigan_zoo.evaluation.features import Normalization

#: (data set, class names) in label order; the joint label of (d, c) is OFFSETS[d] + c
DATASETS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("pneumoniamnist", ("normal", "pneumonia")),
    ("breastmnist", ("malignant", "normal/benign")),
    ("retinamnist", ("grade 0", "grade 1", "grade 2", "grade 3", "grade 4")),
    ("brain_mri_pgbm", BRAIN_CLASS_NAMES),
    ("adrenalmnist3d_slices", ("normal", "hyperplasia")),
)
OFFSETS: Tuple[int, ...] = tuple(int(x) for x in np.cumsum([0] + [len(c) for _, c in DATASETS])[:-1])
NUM_LABELS = sum(len(c) for _, c in DATASETS)
JOINT_LABELS: Tuple[str, ...] = tuple(f"{d}:{c}" for d, cs in DATASETS for c in cs)
INPUT_SIZE = 32
FEATURE_DIM = 128
#: the preprocessing the extractor is trained with (and FID's default)
TRAIN_NORMALIZATION = Normalization(size=INPUT_SIZE, resize_mode="bilinear", channels="rgb", intensity="[0,1]")


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class MedFeatureNet(nn.Module):
    """3 x 32 x 32 -> ``features`` (B, 128) -> ``forward`` logits (B, NUM_LABELS)."""

    def __init__(self, in_channels: int = 3, num_labels: int = NUM_LABELS, width: int = 32,
                 feature_dim: int = FEATURE_DIM, dropout: float = 0.2):
        super().__init__()
        self.body = nn.Sequential(
            _block(in_channels, width), nn.MaxPool2d(2),  # 16
            _block(width, 2 * width), nn.MaxPool2d(2),  # 8
            _block(2 * width, 4 * width), nn.MaxPool2d(2),  # 4
            _block(4 * width, feature_dim),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_labels))

    @torch.jit.export
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 32, 32) in [0, 1] -> (B, 128) globally average-pooled activations."""
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _labels(data: RealData) -> torch.Tensor:
    """The class labels of one extractor data set (every extractor data set is labelled)."""
    assert data.labels is not None, f"{data.name} has no labels"
    return data.labels


def _adrenal_slices(data_dir: Path, split: str, seed: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """3 of the 9 slices (3 axes x offsets -6/0/+6 from the centre) of every AdrenalMNIST3D volume."""
    vols = load_medmnist(data_dir / "adrenalmnist3d.npz", split, spatial_dims=3)
    x = vols.images[:, 0]  # (N, 28, 28, 28)
    c = x.shape[-1] // 2
    cand = [x.select(axis, c + off) for axis in (1, 2, 3) for off in (-6, 0, 6)]  # 9 x (N, 28, 28)
    stack = torch.stack(cand, 1)  # (N, 9, 28, 28)
    gen = torch.Generator().manual_seed(seed)
    pick = torch.argsort(torch.rand(stack.shape[0], 9, generator=gen), dim=1)[:, :3]
    chosen = torch.gather(stack, 1, pick[:, :, None, None].expand(-1, -1, *stack.shape[-2:]))
    labels = _labels(vols).repeat_interleave(3)
    return chosen.reshape(-1, 1, *stack.shape[-2:]), labels


def load_dataset_split(name: str, data_dir: Union[str, Path], split: str, seed: int = 0
                       ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Images (N, C, H, W) in [0, 1] and class labels of one extractor data set (``split``: train or test)."""
    data_dir = Path(data_dir)
    if name == "brain_mri_pgbm":
        data = load_brain_slices(data_dir, split=split, size=INPUT_SIZE)
        return data.images, _labels(data)
    if name == "adrenalmnist3d_slices":
        return _adrenal_slices(data_dir, split, seed)
    data = load_medmnist(data_dir / f"{name}.npz", split, spatial_dims=2)
    return data.images, _labels(data)


def build_split(data_dir: Union[str, Path], split: str = "train", seed: int = 0
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All extractor data sets of ``split``, preprocessed: (images (N, 3, 32, 32), joint labels, data set index)."""
    xs: List[torch.Tensor] = []
    ys: List[torch.Tensor] = []
    ds: List[torch.Tensor] = []
    for d, (name, _) in enumerate(DATASETS):
        x, y = load_dataset_split(name, data_dir, split, seed)
        xs.append(torch.cat([TRAIN_NORMALIZATION.apply(x[i:i + 1024]) for i in range(0, len(x), 1024)]))
        ys.append(y.long() + OFFSETS[d])
        ds.append(torch.full((len(y),), d, dtype=torch.long))
    return torch.cat(xs), torch.cat(ys), torch.cat(ds)


def train_dataset(data_dir: Union[str, Path], seed: int = 0) -> torch.utils.data.TensorDataset:
    """The training split as a TensorDataset of (image, joint label) pairs for MONAI's SupervisedTrainer."""
    x, y, _ = build_split(data_dir, "train", seed)
    return torch.utils.data.TensorDataset(x, y)


def test_accuracy(network: nn.Module, data_dir: Union[str, Path], seed: int = 0, batch_size: int = 500
                  ) -> Dict[str, Dict[str, float]]:
    """Per data set: n, class accuracy (argmax among that data set's classes), data-set-identification accuracy,
    and joint accuracy (argmax over all labels) on the test split (brain MRI: held-out patients)."""
    x, y, d = build_split(data_dir, "test", seed)
    network = network.eval()
    with torch.inference_mode():
        logits = torch.cat([network(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    joint = logits.argmax(1)
    bounds = list(OFFSETS) + [NUM_LABELS]
    label_ds = torch.bucketize(joint, torch.tensor(bounds[1:]), right=True)
    out: Dict[str, Dict[str, float]] = {}
    for k, (name, classes) in enumerate(DATASETS):
        m = d == k
        lo, hi = bounds[k], bounds[k + 1]
        within = logits[m, lo:hi].argmax(1) + lo
        out[name] = {
            "n": int(m.sum()),
            "num_classes": len(classes),
            "class_accuracy": round(float((within == y[m]).float().mean()), 4),
            "dataset_accuracy": round(float((label_ds[m] == k).float().mean()), 4),
            "joint_accuracy": round(float((joint[m] == y[m]).float().mean()), 4),
        }
    return out


def finalize(network: nn.Module, data_dir: Union[str, Path], bundle_root: Union[str, Path], seed: int = 0) -> Dict:
    """After training: write models/model.pt (state dict), models/model.ts (TorchScript) and
    docs/test_accuracy.json; return the per-data-set test accuracies."""
    bundle_root = Path(bundle_root)
    network = network.cpu().eval()
    (bundle_root / "models").mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), bundle_root / "models" / "model.pt")
    torch.jit.save(torch.jit.script(network), str(bundle_root / "models" / "model.ts"))
    acc = test_accuracy(network, data_dir, seed)
    (bundle_root / "docs").mkdir(parents=True, exist_ok=True)
    (bundle_root / "docs" / "test_accuracy.json").write_text(json.dumps(acc, indent=2) + "\n")
    print("test accuracy per data set:", json.dumps(acc), flush=True)
    return acc


def class_names(dataset: str) -> Sequence[str]:
    return dict(DATASETS)[dataset]
