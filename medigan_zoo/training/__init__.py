"""Training support for the zoo's bundles (used from configs/train.json)."""
