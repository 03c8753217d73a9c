"""MONAI Deploy App SDK application of the zoo: requests in, synthetic DICOM studies out (docs/deploy.md).

``medigan_zoo.deploy.app`` holds the application (it imports the SDK and Holoscan: ``pip install
medigan_zoo[deploy]``), ``operators`` its operators, ``request`` the request files (torch-free), ``nifti`` the
optional NIfTI output. Importing this package imports none of them.
"""
