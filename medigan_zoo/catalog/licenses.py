"""License names -> SPDX ids: the one table, read by the medigan importer, foreign-bundle indexing and the search
``license=`` filter. Pure Python.

* ``license_id("MIT License")`` -> ``"MIT"``: a license string (medigan's config, a user's filter) as an SPDX id;
  strings naming no single SPDX license become ``LicenseRef-`` ids ("BSD": 2- or 3-clause is not said), a
  missing one "unknown".
* ``license_from_text(LICENSE file text)`` -> an SPDX id, or "" when no row's phrases are in the text.
* ``license_key(value)``: what the search filter compares, so ``cc by 4.0``, ``CC-BY-4.0`` and ``cc-by-4.0`` agree.
* ``hub_license(value)`` -> the Hugging Face Hub's license id (``"CC-BY-NC-4.0"`` -> ``"cc-by-nc-4.0"``), or
  ``"other"`` for a license the Hub does not list (a model card then names it in ``license_name``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Tuple

__all__ = ["License", "LICENSES", "UNKNOWN", "license_id", "license_from_text", "license_key", "hub_license"]

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
    License("CC-BY-NC-SA-4.0", ("cc by-nc-sa 4.0",), ("attribution-noncommercial-sharealike",)),
    License("CC-BY-NC-4.0", ("cc by-nc 4.0",), ("attribution-noncommercial 4.0", "attribution-noncommercial")),
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
    "CC-BY-4.0": "cc-by-4.0", "CC-BY-3.0": "cc-by-3.0", "BSD-3-Clause": "bsd-3-clause",
    "BSD-2-Clause": "bsd-2-clause", "LicenseRef-BSD": "bsd", "GPL-3.0-only": "gpl-3.0", "GPL-2.0-only": "gpl-2.0",
    "LicenseRef-GPL": "gpl", "CC0-1.0": "cc0-1.0", UNKNOWN: UNKNOWN,
}


def hub_license(value: Any) -> str:
    """The Hugging Face Hub license id of a license string (``license_id`` first): ``"CC BY 4.0"`` ->
    ``"cc-by-4.0"``; a license the Hub does not list -> ``"other"``; none -> ``"unknown"``."""
    return _HUB_LICENSES.get(license_id(value), "other")
