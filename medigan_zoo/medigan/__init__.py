"""Layer 1, torch-free: medigan compatibility (selector verbs and their result objects, the medigan config view of
a model, the importer of medigan's global.json)."""
