"""Layer 1, torch-free: the field's vocabulary (synonyms, modality codes) and ranked free-text search."""
