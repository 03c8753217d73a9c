"""Bring your own data (issue #15): turn image files into a training data set (``prepare``) and a finished bundle
into a reproducible, catalog-pinned zip (``package``). One module per job:

- :mod:`medigan_zoo.byod.sources`: the files of a folder or zip (zip members outside the archive refused)
- :mod:`medigan_zoo.byod.readers`: PNG/JPEG/DICOM/NIfTI -> float images in [0, 1], the normalisation rule per modality
- :mod:`medigan_zoo.byod.split`: train/val/test split by patient
- :mod:`medigan_zoo.byod.prepare`: the ``prepare`` command (dataset.json + MedMNIST-layout npz, written atomically)
- :mod:`medigan_zoo.byod.package`: the ``package`` command (reproducible zip, sha256, catalog entry)
"""
