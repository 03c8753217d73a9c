"""``medigan_zoo.training.data.read_train_split``: the one reader of an npz's training split shape and labels used
by ``init --data`` and ``train --data``; it reads the images' shape from the .npy header, not the pixels."""
from __future__ import annotations

import numpy as np
import pytest

from medigan_zoo.byod.init import read_data_facts
from medigan_zoo.core.errors import ZooError
from medigan_zoo.training.data import read_train_split


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_shape_and_counts_of_plain_and_compressed_npz(tmp_path, save):
    path = tmp_path / "d.npz"
    labels = np.array([[2], [0], [2], [1], [2]])
    save(path, train_images=np.zeros((5, 12, 10, 3), np.uint8), train_labels=labels,
         test_images=np.zeros((1, 12, 10, 3), np.uint8))
    split = read_train_split(path)
    assert split.shape == (5, 12, 10, 3)
    assert split.counts == {0: 1, 1: 1, 2: 3} and list(split.counts) == [0, 1, 2]
    assert split.num_classes == 3


def test_unlabelled_and_gapped_labels(tmp_path):
    path = tmp_path / "u.npz"
    np.savez(path, train_images=np.zeros((4, 8, 8, 8), np.uint8))
    split = read_train_split(path)
    assert split.shape == (4, 8, 8, 8) and split.counts is None and split.num_classes == 0
    gapped = tmp_path / "g.npz"
    np.savez(gapped, train_images=np.zeros((2, 8, 8), np.uint8), train_labels=np.array([0, 3]))
    assert read_train_split(gapped).num_classes == 4  # the embedding size the labels index


def test_the_header_is_enough_even_for_a_large_array(tmp_path):
    """The images are not loaded: a 2 GB-sized header over a few bytes of data still gives its shape."""
    import zipfile

    path = tmp_path / "big.npz"
    header = {"descr": "|u1", "fortran_order": False, "shape": (20000, 320, 320)}
    with zipfile.ZipFile(path, "w") as archive, archive.open("train_images.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 16)  # truncated: loading the pixels would fail
    assert read_train_split(path).shape == (20000, 320, 320)


def test_errors_name_the_file_and_what_to_do(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, images=np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ZooError, match=r"--data .*x\.npz: has no train_images array \(keys: images\); prepare"):
        read_train_split(path)
    not_a_zip = tmp_path / "n.npz"
    np.save(tmp_path / "n.npy", np.zeros(3))
    (tmp_path / "n.npy").rename(not_a_zip)
    with pytest.raises(ZooError, match=r"n\.npz: not a readable npz archive .*; prepare"):
        read_train_split(not_a_zip)
    unlabelled = tmp_path / "u.npz"
    np.savez(unlabelled, train_images=np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ZooError, match=r"u\.npz: has no train_labels array"):
        read_data_facts(unlabelled)
