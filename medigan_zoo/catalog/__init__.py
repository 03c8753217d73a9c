"""Layer 1, torch-free: typed model metadata, the zoo-block schema, reading bundles and catalogs, the index of all
models, verified downloads. Imports neither torch nor monai nor numpy (tests/test_layers.py)."""
