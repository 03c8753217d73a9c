"""Layer 1, torch-free: typed model metadata, the zoo-block schema, reading bundles and catalogs, the index of all
models, verified downloads, the trust policy (trust.py) and the static scan of a bundle's code (code_scan.py).
Imports neither torch nor monai nor numpy (tests/test_layers.py)."""
