"""The zoo's version (also written into every metric it computes)."""
__version__ = "0.1.0"
