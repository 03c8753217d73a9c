"""Whose code the zoo runs: the one trust policy (docs/security.md).

A bundle's configs are code (``$`` expressions, ``_target_`` and ``_requires_`` run when a config is parsed), so
no config is evaluated unless its bundle is trusted. Trusted are:

1. the bundles shipped with the zoo (:func:`medigan_zoo.core.paths.builtin_bundles_root`);
2. bundles in the zoo's download cache (:func:`medigan_zoo.core.paths.zoo_home`) that carry the verification
   marker :data:`VERIFIED_MARKER` (written by the download code after the sha256 / revision pin was checked) at
   their root or in a folder of their cache entry between the bundle and ``ZOO_HOME/bundles/<id>``;
3. whatever the user trusts: folders passed as ``--trust PATH[,PATH]`` (CLI), ``Generators(trust_bundles=[...])``
   (``True`` trusts every bundle, for notebooks) or listed in ``MEDIGAN_ZOO_TRUSTED_PATHS`` (os.pathsep list);
   a trusted folder trusts every bundle under it.

Paths are compared after resolving symlinks, and a bundle whose config or Python files are symlinks to files
outside it is never trusted by location (a symlinked ``metadata.json`` or ``inference.json`` pointing into a shipped
bundle does not make a bundle shipped). Torch-free: only JSON and the file system are read.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Union

from medigan_zoo.core import paths
from medigan_zoo.core.errors import UntrustedBundleError

#: environment variable listing trusted roots (os.pathsep separated)
ENV_TRUSTED = "MEDIGAN_ZOO_TRUSTED_PATHS"
#: file the download code writes at a verified bundle's root: {"sha256", "source", "revision", "verified_at"}
VERIFIED_MARKER = ".medigan_zoo_verified.json"

#: what callers pass as ``trusted``: None (policy only), True (trust everything), a path or a list of paths
TrustArg = Union[None, bool, paths.PathLike, Sequence[paths.PathLike]]


@dataclass(frozen=True)
class TrustDecision:
    """Whether a bundle is trusted and why (``reason`` completes "the bundle is ...")."""

    bundle_dir: Path
    trusted: bool
    reason: str


def trusted_roots(trusted: TrustArg = None) -> List[Path]:
    """The user's trusted folders: ``trusted`` (paths) plus ``MEDIGAN_ZOO_TRUSTED_PATHS``, symlinks resolved."""
    given = [] if trusted is None or isinstance(trusted, bool) else paths.as_path_list(trusted)
    return [_real(p) for p in given + paths.split_env_paths(ENV_TRUSTED)]


def _real(path: paths.PathLike) -> Path:
    return Path(os.path.realpath(Path(path).expanduser()))


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _escaping_files(bundle: Path) -> List[str]:
    """Config and Python files of ``bundle`` that are symlinks resolving outside it."""
    candidates = list((bundle / "configs").glob("*")) if (bundle / "configs").is_dir() else []
    candidates += list(bundle.rglob("*.py"))
    out = []
    for path in candidates:
        if path.is_symlink() and not _under(_real(path), bundle):
            out.append(f"{path.relative_to(bundle).as_posix()} -> {_real(path)}")
    return out


def _verified_marker(bundle: Path) -> Optional[str]:
    """The pin of a valid verification marker for a bundle in the download cache, or None.

    The marker counts at the bundle's root or in a folder above it up to its cache entry ``ZOO_HOME/bundles/<id>``
    (never ``ZOO_HOME`` or ``ZOO_HOME/bundles`` themselves, which would vouch for every download).
    """
    cache = _real(paths.zoo_home())
    if not _under(bundle, cache) or bundle in (cache, cache / "bundles"):
        return None
    parts = bundle.relative_to(cache).parts
    top = cache / parts[0] / parts[1] if parts[0] == "bundles" else cache / parts[0]
    folder = bundle
    while True:
        marker = folder / VERIFIED_MARKER
        if marker.is_file() and not marker.is_symlink():
            try:
                record = json.loads(marker.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
            if isinstance(record, dict) and record.get("source") and (record.get("sha256") or record.get("revision")):
                return str(record.get("sha256") or record.get("revision"))
            return None
        if folder == top:
            return None
        folder = folder.parent


def trust_decision(bundle_dir: paths.PathLike, trusted: TrustArg = None) -> TrustDecision:
    """Decide whether the bundle at ``bundle_dir`` may run its config code (see the module docstring)."""
    bundle = _real(bundle_dir)
    if trusted is True:
        return TrustDecision(bundle, True, "trusted by the caller (trust_bundles=True)")
    escaping = _escaping_files(bundle) if bundle.is_dir() else []
    if escaping:
        return TrustDecision(bundle, False, f"it links files from elsewhere ({escaping[0]}), so its location says "
                                            "nothing about whose code it runs")
    shipped = _real(paths.builtin_bundles_root())
    if _under(bundle, shipped):
        return TrustDecision(bundle, True, "shipped with medigan_zoo")
    pin = _verified_marker(bundle)
    if pin is not None:
        return TrustDecision(bundle, True, f"a verified download (pin {pin[:16]})")
    for root in trusted_roots(trusted):
        if _under(bundle, root):
            return TrustDecision(bundle, True, f"under the trusted folder {root}")
    if _under(bundle, _real(paths.zoo_home())):
        why = f"it is in the download cache without a valid {VERIFIED_MARKER} (not a verified download)"
    else:
        why = "it is not shipped with medigan_zoo, not a verified download, and not under a trusted folder"
    return TrustDecision(bundle, False, why)


def is_trusted(bundle_dir: paths.PathLike, trusted: TrustArg = None) -> bool:
    """True when the bundle's config code may run (shipped, verified download, or trusted by the user)."""
    return trust_decision(bundle_dir, trusted).trusted


def check_trusted(bundle_dir: paths.PathLike, trusted: TrustArg = None) -> None:
    """Return when the bundle may run its config code; otherwise raise, before anything is evaluated.

    Raises:
        UntrustedBundleError: one line naming the bundle (id and path), why it is untrusted, its code findings
            (count and the first one) and exactly what to pass to trust it.
    """
    decision = trust_decision(bundle_dir, trusted)
    if decision.trusted:
        return
    from medigan_zoo.catalog.code_scan import scan_bundle

    bundle = decision.bundle_dir
    scan = scan_bundle(bundle)
    raise UntrustedBundleError(
        f"Bundle {bundle.name!r} ({bundle}) is not trusted: {decision.reason}. Its configs are code and would run "
        f"when parsed: {scan.summary()}. Review it with `medigan-zoo validate {bundle}`, then trust it with "
        f"--trust {bundle} (CLI), Generators(trust_bundles=[{str(bundle)!r}]) (Python) or by adding it to "
        f"{ENV_TRUSTED}.")
