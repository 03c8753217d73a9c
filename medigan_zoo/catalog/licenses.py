"""License names -> SPDX ids: the one table, read by the medigan importer, foreign-bundle indexing and the search
``license=`` filter. Pure Python.

* ``license_id("MIT License")`` -> ``"MIT"``: a license string (medigan's config, a user's filter) as an SPDX id;
  strings naming no single SPDX license become ``LicenseRef-`` ids ("BSD": 2- or 3-clause is not said), a
  missing one "unknown".
* ``license_from_text(LICENSE file text)`` -> an SPDX id, or "" when no row's phrases are in the text.
* ``license_key(value)``: what the search filter compares, so ``cc by 4.0``, ``CC-BY-4.0`` and ``cc-by-4.0`` agree.
* ``hub_license(value)`` -> the Hugging Face Hub's license id (``"CC-BY-NC-4.0"`` -> ``"cc-by-nc-4.0"``), or
  ``"other"`` for a license the Hub does not list (a model card then names it in ``license_name``).
* ``license_mentioned(text)``: the license a sentence names ("... released under CC BY-SA 4.0") or "".
* ``non_commercial(value)``: True for licenses that forbid commercial use (CC BY-NC*, NVIDIA OneWay Noncommercial);
  what a generated folder's manifest warns about (``medigan_zoo.engine.runner``).
* ``license_terms(metadata, LICENSE text, README text)``: the licenses of a MONAI bundle's code, weights and
  training data where its files say so (:class:`LicenseTerms`; docs/foreign_bundles.md, "Licenses").
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

__all__ = ["License", "LICENSES", "UNKNOWN", "license_id", "license_from_text", "license_key", "hub_license",
           "license_mentioned", "non_commercial", "LicenseTerms", "license_terms"]

UNKNOWN = "unknown"


@dataclass(frozen=True)
class License:
    """One license: its SPDX id, how people write its name, and phrases that identify its full text."""

    spdx: str
    spellings: Tuple[str, ...] = ()  # lower case, single spaces; the SPDX id itself always counts
    text_marks: Tuple[str, ...] = ()  # lower case; a LICENSE file containing one of them is this license


#: Rows are tried in this order on LICENSE texts, so the more specific licenses come first (NC-SA before NC
#: before BY; 3-clause before 2-clause BSD).
LICENSES: Tuple[License, ...] = (
    License("Apache-2.0", ("apache 2.0", "apache license 2.0", "apache license, version 2.0"), ("apache license",)),
    License("MIT", ("mit license",), ("mit license",)),
    # NVIDIA's license for model weights (MONAI's VISTA3D, MAISI-era NVIDIA models): research, not commercial use
    License("LicenseRef-NVIDIA-OneWay-Noncommercial", ("nvidia oneway noncommercial license",
                                                       "nvidia oneway noncommercial"),
            ("nvidia oneway noncommercial",)),
    License("CC-BY-NC-SA-4.0", ("cc by-nc-sa 4.0",), ("attribution-noncommercial-sharealike",)),
    License("CC-BY-NC-4.0", ("cc by-nc 4.0",), ("attribution-noncommercial 4.0", "attribution-noncommercial")),
    License("CC-BY-SA-4.0", ("cc by-sa 4.0",), ("attribution-sharealike 4.0",)),
    License("CC-BY-4.0", ("cc by 4.0",), ("attribution 4.0",)),
    License("CC-BY-3.0", ("cc by 3.0",), ("attribution 3.0",)),
    License("BSD-3-Clause", ("bsd 3-clause",), ("bsd 3-clause", "neither the name of")),
    License("BSD-2-Clause", ("bsd 2-clause",), ("bsd 2-clause", "redistribution and use in source and binary forms")),
    License("LicenseRef-BSD", ("bsd", "bsd license"), ("bsd",)),
    License("GPL-3.0-only", ("gpl-3.0", "gpl 3.0")),
    License("GPL-2.0-only", ("gpl-2.0", "gpl 2.0")),
    License("LicenseRef-GPL", ("gnu general public license",)),
    License("CC0-1.0", ("cc0",), ("cc0",)),
)

_BY_SPELLING: Dict[str, str] = {}
for _row in LICENSES:
    for _name in (_row.spdx.lower(), *_row.spellings):
        _BY_SPELLING.setdefault(_name, _row.spdx)
_SPDX_LIKE = re.compile(r"[A-Za-z0-9.+-]+")


def license_id(value: Any) -> str:
    """The SPDX id of a license string: ``"MIT License"`` -> ``"MIT"``, ``"cc by 4.0"`` -> ``"CC-BY-4.0"``.

    Unknown strings that look like an SPDX id are kept; other text becomes ``LicenseRef-<text>``
    (``"Some Custom License v2"`` -> ``"LicenseRef-Some-Custom-License-v2"``); None or "" -> "unknown".
    """
    if value is None or not str(value).strip():
        return UNKNOWN
    text = " ".join(str(value).split())
    low = text.lower()
    found = _BY_SPELLING.get(low)
    if found is None and low.endswith(" license"):
        found = _BY_SPELLING.get(low[: -len(" license")])
    if found:
        return found
    if _SPDX_LIKE.fullmatch(text):
        return text
    return "LicenseRef-" + re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


def license_from_text(text: str) -> str:
    """The SPDX id of a LICENSE file's text (the first row with a phrase in it), or "" when none matches."""
    low = " ".join(str(text).lower().split())
    for row in LICENSES:
        for mark in row.text_marks:
            if re.search(rf"(?<![a-z]){re.escape(mark)}", low):
                return row.spdx
    return ""


def license_key(value: Any) -> str:
    """Comparison key of a license for exact filters: ``license_id`` in lower-case words joined by ``-``, without
    ``LicenseRef-`` and a trailing ``license`` (``"BSD License"``, ``"BSD"`` -> ``"bsd"``; ``"CC-BY-4.0"`` ->
    ``"cc-by-4-0"``)."""
    words = re.findall(r"[a-z0-9]+", license_id(value).lower())
    if words[:1] == ["licenseref"]:
        words = words[1:]
    if len(words) > 1 and words[-1] == "license":
        words = words[:-1]
    return "-".join(words)


#: SPDX ids of ``LICENSES`` -> the license ids the Hugging Face Hub lists for model cards (its ``license:`` field)
_HUB_LICENSES: Dict[str, str] = {
    "Apache-2.0": "apache-2.0", "MIT": "mit", "CC-BY-NC-SA-4.0": "cc-by-nc-sa-4.0", "CC-BY-NC-4.0": "cc-by-nc-4.0",
    "CC-BY-4.0": "cc-by-4.0", "CC-BY-SA-4.0": "cc-by-sa-4.0", "CC-BY-3.0": "cc-by-3.0", "BSD-3-Clause": "bsd-3-clause",
    "BSD-2-Clause": "bsd-2-clause", "LicenseRef-BSD": "bsd", "GPL-3.0-only": "gpl-3.0", "GPL-2.0-only": "gpl-2.0",
    "LicenseRef-GPL": "gpl", "CC0-1.0": "cc0-1.0", UNKNOWN: UNKNOWN,
}


def hub_license(value: Any) -> str:
    """The Hugging Face Hub license id of a license string (``license_id`` first): ``"CC BY 4.0"`` ->
    ``"cc-by-4.0"``; a license the Hub does not list -> ``"other"``; none -> ``"unknown"``."""
    return _HUB_LICENSES.get(license_id(value), "other")


def non_commercial(value: Any) -> bool:
    """True when the license (any spelling ``license_id`` reads) forbids commercial use: an ``-NC`` Creative
    Commons license or a ``Noncommercial`` one (``"CC BY-NC 4.0"``, ``"CC-BY-NC-SA-4.0"``, NVIDIA OneWay)."""
    spdx = license_id(value).upper()
    return "-NC-" in spdx + "-" or "NONCOMMERCIAL" in spdx.replace("-", "")


def _loose(name: str) -> str:
    """A regex for a license name in running text: its words in order, separated by spaces or hyphens."""
    words = [w for w in re.split(r"[\s_-]+", name.lower()) if w]
    return r"(?<![a-z0-9])" + r"[\s_-]+".join(re.escape(w) for w in words) + r"(?![a-z0-9]|-[a-z])"


_MENTIONS: Tuple[Tuple[str, "re.Pattern[str]"], ...] = tuple(
    (row.spdx, re.compile("|".join(_loose(n) for n in (row.spdx, *row.spellings) if not n.startswith("licenseref"))))
    for row in LICENSES)


def license_mentioned(text: Any) -> str:
    """The SPDX id of the first license of the table (most specific first) a text names, e.g. "the dataset is
    available under the Creative Commons CC BY-SA 4.0 license" -> ``CC-BY-SA-4.0``; "" when it names none."""
    low = " ".join(str(text or "").lower().split())
    for spdx, pattern in _MENTIONS:
        if pattern.pattern and pattern.search(low):
            return spdx
    return ""


#: words that make a sentence about the weights, or about the training data
_WEIGHT_WORDS = re.compile(r"\b(weights?|checkpoints?|pre-?trained models?|trained models?|model files?)\b")
_DATA_WORDS = re.compile(r"\b(data ?sets?|data|images|scans)\b")
#: metadata keys that state a license of the weights or of the data (MONAI's schema has neither; some bundles add them)
WEIGHT_KEYS = ("weights_license", "model_license", "license_weights")
DATA_KEYS = ("data_license", "dataset_license")


def _sentences(text: str) -> List[str]:
    """Sentences of a text (paragraphs joined, split after . ! ? and at blank lines)."""
    out: List[str] = []
    for para in re.split(r"\n\s*\n", text or ""):
        # not after initials and titles ("M.D.", "Ph.D.", "Dr.", "e.g.")
        out += [s for s in re.split(r"(?<![A-Z]\.)(?<!Dr\.)(?<!\.g\.)(?<!\.e\.)(?<=[.!?])\s+", " ".join(para.split()))
                if s]
    return out


@dataclass(frozen=True)
class LicenseTerms:
    """Licenses of a bundle's parts as its files state them (``unknown`` when they do not), and where each was read.

    ``code``: the bundle (configs, scripts): metadata ``license``, else the LICENSE file. ``weights``: a metadata key
    of :data:`WEIGHT_KEYS`, else a sentence of the LICENSE file, ``copyright`` or docs/README.md that is about the
    weights and names a license. ``data``: a key of :data:`DATA_KEYS`, else ``data_source`` naming a license, else a
    README sentence about the data naming one. :attr:`effective` is what the zoo's ``license`` field and the
    ``license=`` filter use: the weights' license when stated, else the code's (MONAI bundles ship both under one
    LICENSE unless they say otherwise).
    """

    code: str = UNKNOWN
    weights: str = UNKNOWN
    data: str = UNKNOWN
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def effective(self) -> str:
        return self.weights if self.weights != UNKNOWN else self.code

    def as_dict(self) -> Dict[str, Any]:
        note = ("the weights' license is stated apart from the code's" if self.weights != UNKNOWN else
                "no separate license is stated for the weights: the code's license is shown as the model's")
        return {"code": self.code, "weights": self.weights, "data": self.data, "sources": dict(self.sources),
                "note": note}


def _stated(metadata: Mapping[str, Any], keys: Tuple[str, ...]) -> Optional[Tuple[str, str]]:
    for key in keys:
        if metadata.get(key):
            return license_id(metadata[key]), f"metadata {key}"
    return None


def _sentence_license(texts: Mapping[str, str], about: "re.Pattern[str]") -> Optional[Tuple[str, str]]:
    for where, text in texts.items():
        for sentence in _sentences(text):
            if about.search(sentence.lower()):
                found = license_mentioned(sentence)
                if found:
                    return found, where
    return None


def license_terms(metadata: Mapping[str, Any], license_text: str = "", readme_text: str = "") -> LicenseTerms:
    """The :class:`LicenseTerms` of a MONAI bundle from its metadata, LICENSE text and docs/README.md text."""
    sources: Dict[str, str] = {}
    code = UNKNOWN
    if metadata.get("license"):
        code, sources["code"] = license_id(metadata["license"]), "metadata license"
    elif license_text and license_from_text(license_text[:4000]):
        code, sources["code"] = license_from_text(license_text[:4000]), "LICENSE"
    texts = {"LICENSE": license_text, "metadata copyright": str(metadata.get("copyright") or ""),
             "docs/README.md": readme_text}
    weights = _stated(metadata, WEIGHT_KEYS) or _sentence_license(texts, _WEIGHT_WORDS)
    data = _stated(metadata, DATA_KEYS)
    if data is None and license_mentioned(metadata.get("data_source")):
        data = license_mentioned(metadata.get("data_source")), "metadata data_source"
    if data is None:
        data = _sentence_license({"docs/README.md": readme_text}, _DATA_WORDS)
    if weights:
        sources["weights"] = weights[1]
    if data:
        sources["data"] = data[1]
    return LicenseTerms(code=code, weights=weights[0] if weights else UNKNOWN, data=data[0] if data else UNKNOWN,
                        sources=sources)
