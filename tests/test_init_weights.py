"""``init_ckpt``: a training recipe that declares it starts from earlier weights (``load_init_weights``) instead of
random ones, so a model can be trained in stages (fine-tuning from a release's ``models/model.pt``). Every shipped
bundle whose ``configs/train.json`` declares ``init_ckpt`` builds, from its own ``models/model.pt``, a training
network that holds exactly the shipped weights."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import BUNDLES
from torch import nn

from medigan_zoo.training.weights import load_init_weights, save_state_dict


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1))


def test_an_empty_init_ckpt_leaves_the_random_initialisation():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert load_init_weights(net, "") is net
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_init_ckpt_loads_every_tensor_of_a_saved_state_dict(tmp_path):
    trained = _net()
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(1.0)
    trained.state_dict()["1.running_mean"].fill_(0.25)
    path = save_state_dict(trained, tmp_path / "model.pt")
    fresh = _net()
    load_init_weights(fresh, path)
    assert all(torch.equal(trained.state_dict()[k], v) for k, v in fresh.state_dict().items())


def test_a_missing_init_ckpt_names_the_argument_and_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"init_ckpt=.*nope\.pt: no such file.*'' to start from random"):
        load_init_weights(_net(), tmp_path / "nope.pt")


def test_init_ckpt_of_another_architecture_is_refused(tmp_path):
    path = save_state_dict(nn.Linear(3, 2), tmp_path / "other.pt")
    with pytest.raises(RuntimeError, match="Missing key"):
        load_init_weights(_net(), path)


def _declares_init_ckpt(bundle: Path) -> bool:
    train = bundle / "configs" / "train.json"
    return train.is_file() and "init_ckpt" in json.loads(train.read_text())


STAGED = sorted(p.name for p in BUNDLES.iterdir() if _declares_init_ckpt(p))


def test_the_gan_and_diffusion_recipes_declare_init_ckpt():
    for name in ("adrenal_ct_3dgan", "adrenal_ct_3dgan64", "breast_ultrasound_wgangp", "chest_xray_ddpm",
                 "skin_dermatoscopy_ddpm", "retina_fundus_ddpm"):
        assert name in STAGED, f"{name}/configs/train.json has no init_ckpt"


@pytest.mark.parametrize("name", STAGED)
def test_init_ckpt_from_the_shipped_weights_builds_the_shipped_network(name):
    from monai.bundle import ConfigParser

    bundle = BUNDLES / name
    parser = ConfigParser()
    parser.read_config(bundle / "configs" / "train.json")
    parser.read_meta(bundle / "configs" / "metadata.json")
    parser.update({"bundle_root": str(bundle), "device": "$torch.device('cpu')",
                   "init_ckpt": str(bundle / "models" / "model.pt")})
    parser.get_parsed_content("imports")
    network = parser.get_parsed_content("network")
    shipped = torch.load(bundle / "models" / "model.pt", map_location="cpu", weights_only=True)
    state = network.state_dict()
    assert state.keys() == shipped.keys()
    assert all(torch.equal(state[k], shipped[k]) for k in shipped), name
