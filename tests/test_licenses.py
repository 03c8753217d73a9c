"""One license table (medigan_zoo/catalog/licenses.py) for the medigan importer, foreign bundles and the
``license=`` search filter."""
from __future__ import annotations

import pytest

from medigan_zoo.catalog.licenses import LICENSES, license_from_text, license_id, license_key


@pytest.mark.parametrize("text,spdx", [
    ("MIT", "MIT"), ("MIT License", "MIT"), ("mit license", "MIT"), ("Apache 2.0", "Apache-2.0"),
    ("Apache License 2.0", "Apache-2.0"), ("cc by 4.0", "CC-BY-4.0"), ("CC BY-NC 4.0", "CC-BY-NC-4.0"),
    ("cc-by-nc-sa-4.0", "CC-BY-NC-SA-4.0"), ("BSD", "LicenseRef-BSD"), ("BSD License", "LicenseRef-BSD"),
    ("GNU GENERAL PUBLIC LICENSE", "LicenseRef-GPL"), ("gpl-3.0", "GPL-3.0-only"), (None, "unknown"),
    ("  ", "unknown"), ("EUPL-1.2", "EUPL-1.2"), ("Some Custom License v2", "LicenseRef-Some-Custom-License-v2"),
])
def test_license_id(text, spdx):
    assert license_id(text) == spdx


@pytest.mark.parametrize("text,spdx", [
    ("                Apache License\n            Version 2.0, January 2004", "Apache-2.0"),
    ("Attribution-NonCommercial-ShareAlike 4.0 International", "CC-BY-NC-SA-4.0"),
    ("Attribution-NonCommercial 4.0 International", "CC-BY-NC-4.0"),
    ("Creative Commons Attribution 4.0 International", "CC-BY-4.0"),
    ("Redistribution and use in source and binary forms ... Neither the name of the copyright holder",
     "BSD-3-Clause"),
    ("Redistribution and use in source and binary forms, with or without modification", "BSD-2-Clause"),
    ("MIT License\n\nPermission is hereby granted", "MIT"), ("all rights reserved", ""),
])
def test_license_from_text(text, spdx):
    assert license_from_text(text) == spdx


def test_every_row_is_found_by_its_own_spellings():
    for row in LICENSES:
        assert license_id(row.spdx) == row.spdx
        for spelling in row.spellings:
            assert license_id(spelling) == row.spdx, spelling
        for mark in row.text_marks:
            assert license_from_text(f"... {mark} ...") == row.spdx, mark


def test_filter_key_agrees_across_spellings():
    assert license_key("cc-by-4.0") == license_key("CC BY 4.0") == license_key("CC-BY-4.0") == "cc-by-4-0"
    assert license_key("BSD") == license_key("BSD License") == license_key("LicenseRef-BSD") == "bsd"
    assert license_key("CC-BY-4.0") != license_key("CC-BY-NC-4.0")
    assert license_key("Apache License 2.0") == license_key("Apache-2.0")
