"""Layer 2: the bundle runtime: opening a bundle, loading its weights, validating and exporting it."""
