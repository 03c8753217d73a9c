"""A mask model outputs masks: every shipped generator whose output format is "segmentation" gives binary voxels
(0 and 1 only) through the zoo's sample loop and through its card's ``python -m monai.bundle run inferring``."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO, shipped_generators
from test_bundles import card_command

MASK_MODELS = [b for b in shipped_generators() if (b / "models" / "model.pt").is_file() and
               json.loads((b / "configs" / "metadata.json").read_text())["network_data_format"]["outputs"]["pred"]
               .get("format") == "segmentation"]


def test_there_is_a_mask_model():
    assert any(b.name == "adrenal_ct_3dgan" for b in MASK_MODELS)


@pytest.mark.parametrize("bundle", MASK_MODELS, ids=[b.name for b in MASK_MODELS])
def test_mask_model_outputs_binary_masks_through_the_zoo(bundle):
    from medigan_zoo.runtime.bundle import load_bundle_sampler
    from medigan_zoo.runtime.sample import condition_plan, sample_all

    sampler = load_bundle_sampler(bundle, device="cpu")
    for value in (0, 1):
        plan = condition_plan(sampler, {name: [value] * 4 for name in (c.name for c in sampler.info.conditions)})
        out = torch.cat([b.normalized() for b in sample_all(sampler, range(4), plan, 0, 4)])
        values = set(torch.unique(out).tolist())
        assert values <= {0.0, 1.0} and 1.0 in values, values


@pytest.mark.parametrize("bundle", MASK_MODELS, ids=[b.name for b in MASK_MODELS])
def test_mask_model_outputs_binary_masks_through_monai_bundle_run(bundle, tmp_path):
    import nibabel as nib

    cmd = card_command(bundle, "inferring")
    cmd[0] = sys.executable
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd + ["--num_samples", "2", "--output_dir", str(tmp_path)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    files = sorted(tmp_path.rglob("*.nii.gz"))
    assert len(files) == 2
    for file in files:
        values = set(torch.unique(torch.as_tensor(nib.load(str(file)).get_fdata())).tolist())
        assert values <= {0.0, 1.0} and 1.0 in values, (file.name, sorted(values)[:5])
