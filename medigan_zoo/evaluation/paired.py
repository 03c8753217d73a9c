"""Evaluation of the paired brain MRI models on held-out real patients.

* :func:`translation_scores`: SSIM, PSNR and MAE (MONAI metrics) of translations against the real targets, plus
  FID and realism AUC of the translations against the real targets (the zoo's ``evaluate_images``).
* :func:`segmentation_gain`: a small MONAI ``UNet`` trained on real (image, mask) pairs, on synthetic pairs and on
  both; Dice on the held-out real pairs, under medigan's downstream keys (``SEG.trained_on_real.dice``, ...,
  ``SEG_delta`` = dice(real + synthetic) - dice(real)).

:func:`evaluate_translation_bundle` / :func:`evaluate_tumor_bundle` run them on a bundle and return metric objects
(``medigan_zoo.evaluation.report.metric_entry``) with the command that produced them; ``python -m
medigan_zoo.evaluation.paired translation|tumor BUNDLE [--write]`` is that command.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from medigan_zoo.core.errors import ZooError
from medigan_zoo.evaluation.report import metric_entry

PathLike = Union[str, Path]


def translation_scores(translated: torch.Tensor, target: torch.Tensor) -> Dict[str, float]:
    """Mean SSIM, PSNR (dB) and MAE over slices; both (N, 1, H, W) in [0, 1] (data range 1)."""
    from monai.metrics import MAEMetric, PSNRMetric, SSIMMetric

    if translated.shape != target.shape:
        raise ZooError(f"translations {tuple(translated.shape)} and targets {tuple(target.shape)} differ in shape")
    x, y = translated.float().clamp(0, 1), target.float().clamp(0, 1)
    ssim = torch.as_tensor(SSIMMetric(spatial_dims=2, data_range=1.0)(x, y))
    psnr = torch.as_tensor(PSNRMetric(max_val=1.0)(x, y))
    mae = torch.as_tensor(MAEMetric()(x, y))
    return {"SSIM": float(ssim.mean()), "PSNR": float(psnr.mean()), "MAE": float(mae.mean())}


@dataclass
class SegConfig:
    """Training of the downstream segmentation network (MONAI ``UNet``, Dice + cross-entropy loss, Adam).

    Chosen on the real pairs alone (2026-12-02, held-out patient PGBM-008): with tumor slices drawn half of the time
    and 600 iterations the network learned to predict no tumor at all (Dice 0.00); drawing them 90 % of the time,
    1,500 iterations and random affine augmentation give a network that finds part of the held-out tumors.
    """

    channels: Tuple[int, ...] = (16, 32, 64)
    strides: Tuple[int, ...] = (2, 2)
    iterations: int = 1500
    batch_size: int = 16
    learning_rate: float = 1e-3
    tumor_fraction: float = 0.9
    #: random affine augmentation of each training pair: rotation (radians), relative scale, shift (fraction of size)
    rotation: float = 0.2
    scale: float = 0.1
    shift: float = 0.05


def _random_affine(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator,
                   config: SegConfig) -> Tuple[torch.Tensor, torch.Tensor]:
    """The same random rotation / scaling / shift of each image (bilinear) and its mask (nearest)."""
    import torch.nn.functional as F

    from medigan_zoo.networks.paired import affine_theta

    u = torch.rand(x.shape[0], 4, generator=gen) * 2 - 1
    theta = affine_theta(u[:, 0] * config.rotation, 1 + u[:, 1] * config.scale, u[:, 2:] * 2 * config.shift)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    y = F.grid_sample(y, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return x, y


def fit_segmenter(images: torch.Tensor, masks: torch.Tensor, seed: int = 0,
                  config: SegConfig = SegConfig()) -> nn.Module:
    """A MONAI ``UNet`` (1 -> 2 classes) trained on ``images`` (N, 1, H, W) in [0, 1] and ``masks`` {0, 1}, with
    tumor slices drawn with probability ``tumor_fraction``, random horizontal flips and random affine transforms
    (``rotation``, ``scale``, ``shift``); seeded."""
    from monai.losses import DiceCELoss
    from monai.networks.nets import UNet

    gen = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    net = UNet(spatial_dims=2, in_channels=1, out_channels=2, channels=config.channels, strides=config.strides,
               num_res_units=1)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    opt = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    has = masks.flatten(1).amax(1) > 0
    weights = torch.where(has, config.tumor_fraction / max(1, int(has.sum())),
                          (1 - config.tumor_fraction) / max(1, int((~has).sum())))
    net.train()
    for _ in range(int(config.iterations)):
        idx = torch.multinomial(weights, config.batch_size, replacement=True, generator=gen)
        x, y = images[idx] * 2 - 1, masks[idx].float()
        flip = torch.rand(len(idx), generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        y = torch.where(flip[:, None, None, None], y.flip(-1), y)
        if config.rotation or config.scale or config.shift:
            x, y = _random_affine(x, y, gen, config)
        loss = loss_fn(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


def mean_ci(values: Sequence[float], level: float = 0.95) -> Tuple[float, float, float]:
    """Mean and two-sided Student-t interval ``(mean, low, high)`` of independent runs (``low == high == mean``
    for one run: no interval can be given)."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    mean = float(v.mean())
    if len(v) < 2:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return mean, mean - half, mean + half


@torch.no_grad()
def dice_score(net: nn.Module, images: torch.Tensor, masks: torch.Tensor) -> float:
    """Dice of the tumor class over all given slices together (one 3D volume of the stacked slices, so slices
    without tumor count through their false positives)."""
    from monai.metrics import compute_dice

    pred = net(images * 2 - 1).argmax(1, keepdim=True).float()
    value = compute_dice(pred.permute(1, 0, 2, 3)[None], masks.permute(1, 0, 2, 3)[None].float(),
                         include_background=True, ignore_empty=False)
    return float(value.reshape(-1)[0])


def segmentation_gain(real_train: Tuple[torch.Tensor, torch.Tensor], real_test: Tuple[torch.Tensor, torch.Tensor],
                      synthetic: Tuple[torch.Tensor, torch.Tensor], seeds: Sequence[int] = (0, 1, 2, 3, 4),
                      config: SegConfig = SegConfig(),
                      mask_conditioned: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> Dict[str, float]:
    """Dice on ``real_test`` of segmenters trained on real, synthetic and both, one per seed of ``seeds``; with
    ``mask_conditioned`` (synthetic images drawn for the real training masks), also on real + those pairs
    (``SEG.trained_on_real_and_mask_conditioned.dice``, ``SEG_mask_conditioned_delta``).

    Each figure is the mean over the seeds, with its standard deviation (``..._std``) and 95 % Student-t interval
    (``..._ci_low`` / ``..._ci_high``). A delta is paired by seed (the segmenters of one seed draw the same training
    randomness), so its interval is that of the per-seed differences: a gain is real only when it excludes 0.
    """
    sets = {
        "trained_on_real": real_train,
        "trained_on_synthetic": synthetic,
        "trained_on_real_and_synthetic": (torch.cat([real_train[0], synthetic[0]]),
                                          torch.cat([real_train[1], synthetic[1]])),
    }
    if mask_conditioned is not None:
        sets["trained_on_real_and_mask_conditioned"] = (torch.cat([real_train[0], mask_conditioned[0]]),
                                                        torch.cat([real_train[1], mask_conditioned[1]]))
    scores: Dict[str, List[float]] = {}
    out: Dict[str, float] = {}
    for key, (x, y) in sets.items():
        scores[key] = [dice_score(fit_segmenter(x, y, seed=s, config=config), *real_test) for s in seeds]
        name = f"SEG.{key}.dice"
        out[name], out[f"{name}_ci_low"], out[f"{name}_ci_high"] = mean_ci(scores[key])
        out[f"{name}_std"] = float(np.std(scores[key]))
    deltas = {"SEG_delta": "trained_on_real_and_synthetic"}
    if mask_conditioned is not None:
        deltas["SEG_mask_conditioned_delta"] = "trained_on_real_and_mask_conditioned"
    for name, key in deltas.items():
        diff = [a - b for a, b in zip(scores[key], scores["trained_on_real"])]
        out[name], out[f"{name}_ci_low"], out[f"{name}_ci_high"] = mean_ci(diff)
    return out


# --- bundles --------------------------------------------------------------------------------------------------

def _network(bundle: PathLike) -> nn.Module:
    from medigan_zoo.runtime.export import load_network

    return load_network(bundle, trusted=True)


@torch.no_grad()
def translate(network: nn.Module, source: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Translations in [0, 1] of ``source`` (N, 1, H, W) in [0, 1] by a [-1, 1] -> [-1, 1] network."""
    out = [network(source[i:i + batch_size] * 2 - 1) for i in range(0, len(source), batch_size)]
    return ((torch.cat(out) + 1) / 2).clamp(0, 1)


def _data_path(data_path: Optional[PathLike]) -> Path:
    from medigan_zoo.core.paths import default_data_dir

    return Path(data_path) if data_path else default_data_dir() / "brain_mri_pgbm_128.npz"


def _common(command: str, seed: int, n: int, split: str, **fields: Any) -> Dict[str, Any]:
    return {"num_samples": n, "reference_split": split, "seed": seed, "command": command, **fields}


def evaluate_translation_bundle(bundle: PathLike, data_path: Optional[PathLike] = None, seed: int = 0,
                                command: str = "") -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """Metric objects of a T1 -> T2 bundle on its held-out patients, and details (counts, timings)."""
    from medigan_zoo.evaluation.evaluate import deterministic, evaluate_images
    from medigan_zoo.training.brain_pairs import brain_mri_translation_pairs

    start = time.perf_counter()
    path = _data_path(data_path)
    size = int(_network_size(bundle))
    src, tgt, index = brain_mri_translation_pairs(path, size=size, split="test")
    with deterministic(seed, num_threads=1):
        fake = translate(_network(bundle), torch.from_numpy(src))
    target = torch.from_numpy(tgt)
    scores = translation_scores(fake, target)
    patients = sorted({p for p, _, _ in index})
    split = f"{path.name}:T1pre_reg->T2_reg, held-out patients {', '.join(patients)}"
    note = f"{len(src)} held-out slice pairs; images in [0, 1] (per-series 99.5th percentile), data range 1"
    entries = [metric_entry("SSIM", scores["SSIM"], "higher", **_common(command, seed, len(src), split, note=note)),
               metric_entry("PSNR", scores["PSNR"], "higher", **_common(command, seed, len(src), split, note=note)),
               metric_entry("MAE", scores["MAE"], "lower", **_common(command, seed, len(src), split, note=note))]
    identity = translation_scores(torch.from_numpy(src), target)  # the input itself as the "translation"
    report = evaluate_images(target, fake, metrics=("fid", "realism"), seed=seed, reference_name=split,
                             command=command)
    for entry in report.metrics:
        entry = dict(entry)
        entry["note"] = (entry.get("note", "") + f"; translations of the {len(src)} held-out T1 slices vs their "
                         "real T2 slices (small sample: FID is biased upwards and noisy)").lstrip("; ")
        entries.append(entry)
    details = {"num_pairs": len(src), "patients": patients, "identity_baseline": identity,
               "seconds": time.perf_counter() - start}
    return entries, details


def _network_size(bundle: PathLike) -> int:
    import json

    meta = json.loads((Path(bundle) / "configs" / "metadata.json").read_text())
    return int(meta["medigan_zoo"]["spatial_shape"][-1])


@torch.no_grad()
def synthetic_pairs(network: nn.Module, count: int, seed: int = 0, batch_size: int = 64
                    ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``count`` (image in [0, 1], mask {0, 1}) pairs from noise, sample i from seed ``sample_seed(seed, i)``."""
    from medigan_zoo.core.seeding import sample_seed
    from medigan_zoo.samplers.mask_pairs import MaskPairSampler

    sampler = MaskPairSampler(network, [2 * int(getattr(network, "latent_size"))])
    images, masks = [], []
    for start in range(0, count, batch_size):
        seeds = torch.tensor([sample_seed(seed, i) for i in range(start, min(count, start + batch_size))])
        out = sampler(seeds)
        images.append(out["image"])
        masks.append(out["mask"])
    return torch.cat(images), torch.cat(masks)


@torch.no_grad()
def images_for_masks(network: nn.Module, masks: torch.Tensor, seed: int = 0, batch_size: int = 64) -> torch.Tensor:
    """Synthetic images in [0, 1] for ``masks`` (N, 1, H, W) {0, 1} (the mask -> image way), mask i from seed
    ``sample_seed(seed, i)``."""
    from medigan_zoo.core.seeding import sample_seed
    from medigan_zoo.samplers.mask_pairs import MaskPairSampler

    sampler = MaskPairSampler(network, [2 * int(getattr(network, "latent_size"))])
    out = []
    for start in range(0, len(masks), batch_size):
        stop = min(len(masks), start + batch_size)
        seeds = torch.tensor([sample_seed(seed, i) for i in range(start, stop)])
        out.append(sampler(seeds, {"mask": masks[start:stop]})["image"])
    return torch.cat(out)


def evaluate_tumor_bundle(bundle: PathLike, data_path: Optional[PathLike] = None, seed: int = 0,
                          num_synthetic: int = 0, seg_seeds: Sequence[int] = (0, 1, 2, 3, 4),
                          config: SegConfig = SegConfig(), command: str = ""
                          ) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """Downstream segmentation metrics of an image + mask bundle (and FID / realism AUC of its images against the
    real training images); ``num_synthetic`` 0: as many synthetic pairs as real training pairs."""
    from medigan_zoo.evaluation.evaluate import deterministic, evaluate_images
    from medigan_zoo.training.brain_pairs import brain_mri_tumor_pairs

    start = time.perf_counter()
    path = _data_path(data_path)
    size = int(_network_size(bundle))
    tr_img, tr_mask, _ = brain_mri_tumor_pairs(path, size=size, split="train")
    te_img, te_mask, te_index = brain_mri_tumor_pairs(path, size=size, split="test")
    real_train = (torch.from_numpy(tr_img), torch.from_numpy(tr_mask))
    real_test = (torch.from_numpy(te_img), torch.from_numpy(te_mask))
    n = int(num_synthetic) or len(tr_img)
    with deterministic(seed, num_threads=1):
        network = _network(bundle)
        synthetic = synthetic_pairs(network, n, seed=seed)
        conditioned = (images_for_masks(network, real_train[1], seed=seed), real_train[1])
        gain = segmentation_gain(real_train, real_test, synthetic, seeds=seg_seeds, config=config,
                                 mask_conditioned=conditioned)
    patients = sorted({p for p, _, _ in te_index})
    split = f"{path.name}:T1post+Mask_Tumor, held-out patients {', '.join(patients)}"
    note = (f"MONAI UNet {list(config.channels)}, {config.iterations} iterations x batch {config.batch_size} (tumor "
            f"slices drawn {config.tumor_fraction:.0%} of the time, random flips and affine), trained on "
            f"{len(tr_img)} real and/or {n} synthetic pairs; Dice of the tumor over the {len(te_img)} held-out slices "
            f"({int((te_mask.reshape(len(te_mask), -1).max(1) > 0).sum())} with tumor) as one volume; mean of "
            f"{len(seg_seeds)} seeds, 95 % Student-t interval over the seeds")
    entries = []

    def interval(name: str) -> Dict[str, Any]:
        return {"ci_low": gain[f"{name}_ci_low"], "ci_high": gain[f"{name}_ci_high"], "ci_level": 0.95,
                "num_runs": len(seg_seeds)}

    for key in ("trained_on_real", "trained_on_synthetic", "trained_on_real_and_synthetic",
                "trained_on_real_and_mask_conditioned"):
        name = f"SEG.{key}.dice"
        spread = f"; std over seeds {gain[f'{name}_std']:.3f}"
        entries.append(metric_entry(name, gain[name], "higher",
                                    **_common(command, seed, n, split, note=note + spread, **interval(name))))
    entries.append(metric_entry("SEG_delta", gain["SEG_delta"], "higher",
                                **_common(command, seed, n, split, note=note + "; interval of the per-seed "
                                          "differences", **interval("SEG_delta"))))
    entries.append(metric_entry("SEG_mask_conditioned_delta", gain["SEG_mask_conditioned_delta"], "higher",
                                **_common(command, seed, n, split, note=note + "; synthetic images drawn for the "
                                          "real training masks (the mask -> image way), one per mask; interval of "
                                          "the per-seed differences", **interval("SEG_mask_conditioned_delta"))))
    report = evaluate_images(real_train[0], synthetic[0], metrics=("fid", "realism"), seed=seed,
                             reference_name=f"{path.name}:T1post train slices", command=command)
    entries += [dict(e) for e in report.metrics]
    details = {"num_train": len(tr_img), "num_test": len(te_img), "num_synthetic": n, "patients": patients,
               "tumor_fraction_synthetic": float((synthetic[1].flatten(1).amax(1) > 0).float().mean()),
               "seconds": time.perf_counter() - start, **gain}
    return entries, details


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medigan_zoo.evaluation.paired",
                                     description="Evaluate a paired brain MRI bundle on held-out patients.")
    parser.add_argument("kind", choices=("translation", "tumor"))
    parser.add_argument("bundle")
    parser.add_argument("--data_path", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="store the metrics in the bundle's metadata.json")
    args = parser.parse_args(argv)
    command = f"python -m medigan_zoo.evaluation.paired {args.kind} {args.bundle} --seed {args.seed}"
    torch.set_num_threads(1)
    run = evaluate_translation_bundle if args.kind == "translation" else evaluate_tumor_bundle
    entries, details = run(args.bundle, args.data_path, args.seed, command=command)
    for e in entries:
        print(f"{e['name']}: {e['value']}")
    print("details:", details)
    if args.write:
        from medigan_zoo.evaluation.report import write_results

        write_results(Path(args.bundle), entries, force=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
