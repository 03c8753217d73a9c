"""Layer 0: errors, paths, JSON reading, per-sample seeding, version. Imports nothing heavy (no torch, monai, numpy
at import time; ``seeding`` imports numpy, which only the runtime layers use)."""
