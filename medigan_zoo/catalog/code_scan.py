"""Static scan of a bundle's code: what its configs would run, found without running anything.

A MONAI bundle config is code: ``$`` strings are ``eval``-ed, ``_target_`` names are imported and called and
``_requires_`` entries run before their component. This module reads every ``configs/*.json|yaml|yml`` as plain data
(``json`` / ``yaml.safe_load``; nothing is evaluated, imported or instantiated) and lists each piece of code as a
:class:`CodeFinding`:

- every ``$`` expression (names in it found with :mod:`ast`, with the config's ``$import`` lines and MONAI's
  default globals ``torch``, ``monai``, ``np``/``numpy`` resolved to module paths),
- every ``_target_`` (dotted paths as written; bare names resolved the way MONAI's ``ComponentLocator`` does:
  a class or function defined in MONAI, else whatever :func:`pydoc.locate` finds, i.e. a builtin or a module),
- every ``_requires_`` (the code it names is listed under ``...::_requires_``),
- every ``%`` macro that copies content from another file,
- every importable ``.py`` file of the bundle (the bundle root is on ``sys.path`` while a config is instantiated).

A finding whose code reaches outside :data:`ALLOWED_ROOTS` (plus the bundle's own ``scripts``), calls a risky
builtin (``eval``, ``open``, ``__import__``, ...) or walks dunder attributes is a warning naming the call. The scan
is a review aid, not a sandbox: an allowed library can still be made to do harm, so the trust policy
(:mod:`medigan_zoo.catalog.trust`) decides what runs. Torch-free.
"""
from __future__ import annotations

import ast
import functools
import importlib.util
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Set, Tuple, Union

#: top-level packages a config may reach without a warning: MONAI's bundle ecosystem, the zoo itself, and two pure
#: standard-library modules (``json``, ``math``: no file, process or network access)
ALLOWED_ROOTS = ("torch", "monai", "numpy", "medigan_zoo", "ignite", "json", "math")
#: the bundle's own package of helper code (importable from the bundle root)
BUNDLE_SCRIPTS = "scripts"
#: names MONAI puts into every expression's globals (ConfigParser's default ``globals``)
MONAI_GLOBALS = {"torch": "torch", "monai": "monai", "np": "numpy", "numpy": "numpy"}
#: builtins that only build or inspect values; any other builtin in an expression is a warning
SAFE_BUILTINS = frozenset({
    "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "frozenset", "int", "isinstance",
    "issubclass", "len", "list", "map", "max", "min", "pow", "range", "reversed", "round", "set", "slice", "sorted",
    "str", "sum", "tuple", "zip", "None", "True", "False", "print", "repr", "hash", "format", "chr", "ord",
    "complex", "bytes", "callable", "type",
})
#: modules that reach the operating system, the interpreter or the network: a warning wherever they appear in a
#: dotted name (``torch.os.system`` reaches ``os`` through an allowed root)
RISKY_MODULES = frozenset({
    "os", "sys", "subprocess", "builtins", "importlib", "shutil", "socket", "ctypes", "pickle", "marshal", "pty",
    "urllib", "requests", "http", "ftplib", "runpy", "multiprocessing", "signal", "tempfile", "pathlib", "io",
})
#: attributes that run commands or delete files, a warning on any object
RISKY_ATTRIBUTES = frozenset({"system", "popen", "spawnv", "spawnl", "execv", "execve", "execl", "rmtree", "unlink",
                              "remove", "rmdir", "write_text", "write_bytes"})
CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
_REF = re.compile(r"@(\w+(?:(?:::|#)\w+)*)")
_REF_PLACEHOLDER = "__ref__"
_FILE_IN_MACRO = re.compile(r"^(.*?\.(?:json|ya?ml))", re.IGNORECASE)


@dataclass(frozen=True)
class CodeFinding:
    """One piece of code in a bundle: where it is, what it runs, and what of that lies outside the allow-list."""

    file: str  # relative to the bundle: "configs/inference.json", "scripts/sampler.py"
    json_path: str  # MONAI id of the value ("sampler", "network_def::latent_size"); "" for files
    kind: str  # "expression", "target", "requires", "macro", "python_file"
    code: str  # the expression / target / file reference as written
    reaches: Tuple[str, ...] = ()  # dotted names the code uses ("medigan_zoo.sampling.GANSampler", "os.system")
    outside: Tuple[str, ...] = ()  # the subset of `reaches` outside the allow-list, or why

    @property
    def severity(self) -> str:
        return "warning" if self.outside else "info"

    @property
    def where(self) -> str:
        name = self.file[len("configs/"):] if self.file.startswith("configs/") else self.file
        return f"{name}#{self.json_path}" if self.json_path else name

    def describe(self) -> str:
        """``inference.json#sampler runs medigan_zoo.sampling.GANSampler`` (and the warning, if any)."""
        if self.kind == "expression":
            what = f"evaluates {_short(self.code)}"
        elif self.kind == "target":
            what = f"runs {self.reaches[0] if self.reaches else self.code}"
        elif self.kind == "requires":
            what = f"requires {_short(self.code)}"
        elif self.kind == "macro":
            what = f"copies content from {self.code}"
        else:
            what = f"is importable Python ({self.code})"
        text = f"{self.where} {what}"
        if self.outside:
            text += f"; reaches outside the allow-list: {', '.join(self.outside)}"
        return text

    def __str__(self) -> str:
        return f"code: {self.describe()}"


@dataclass
class CodeScan:
    """Every :class:`CodeFinding` of one bundle, plus files that could not be read as data."""

    bundle_dir: Path
    findings: List[CodeFinding] = field(default_factory=list)
    unreadable: List[str] = field(default_factory=list)  # "configs/x.yaml: why"

    @property
    def warnings(self) -> List[CodeFinding]:
        return [f for f in self.findings if f.outside]

    def first(self) -> Optional[CodeFinding]:
        """The finding to show first: the first warning, else the first finding."""
        return next(iter(self.warnings), None) or next(iter(self.findings), None)

    def summary(self) -> str:
        """``12 code findings (2 outside the allow-list), first: inference.json#x evaluates ...``"""
        if not self.findings:
            return "no code findings"
        first = self.first()
        assert first is not None  # findings is non-empty, so first() has one to return
        label = "first outside the allow-list" if first.outside else "first"
        return (f"{len(self.findings)} code finding{'s' if len(self.findings) != 1 else ''} "
                f"({len(self.warnings)} outside the allow-list), {label}: {first.describe()}")


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(str(text).split())
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


@functools.lru_cache(maxsize=1)
def monai_component_names() -> frozenset:
    """Names of the classes and functions defined at the top of MONAI's modules, read from its source files.

    These are the bare ``_target_`` names MONAI's ``ComponentLocator`` resolves (``Compose``, ``SaveImaged``,
    ``DataLoader``, ...). Reading the source keeps the scan torch-free (importing monai imports torch).
    """
    spec = importlib.util.find_spec("monai")
    if spec is None or not spec.origin:
        return frozenset()
    pattern = re.compile(rb"^(?:async\s+def|def|class)\s+(\w+)", re.MULTILINE)
    names: Set[str] = set()
    for path in Path(spec.origin).parent.rglob("*.py"):
        try:
            names.update(m.decode() for m in pattern.findall(path.read_bytes()))
        except OSError:
            continue
    return frozenset(names)


def outside_allow_list(dotted: str, allowed: Tuple[str, ...] = ALLOWED_ROOTS + (BUNDLE_SCRIPTS,)) -> bool:
    """True when ``dotted`` (e.g. ``os.system``, ``torch.os.system``, ``eval``) reaches outside the allow-list."""
    parts = dotted.split(".")
    if parts[0] not in allowed:
        return not (len(parts) == 1 and parts[0] in SAFE_BUILTINS)
    return any(p in RISKY_MODULES or p in RISKY_ATTRIBUTES or (p.startswith("__") and p.endswith("__"))
               for p in parts[1:])


# --- reading configs as data ---------------------------------------------------------------------

def load_config_data(path: Path) -> Any:
    """A config file (JSON or YAML) as plain data (no evaluation). Raises ValueError with the reason (YAML errors
    are ``yaml.YAMLError``, a ValueError neither; callers catch Exception)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        return json.loads(text)
    try:
        import yaml
    except ImportError:
        raise ValueError("PyYAML is not installed, so this YAML config was not scanned") from None
    return yaml.safe_load(text)


def config_files(bundle_dir: Path) -> List[Path]:
    """``configs/*.json|yaml|yml`` of a bundle (sorted)."""
    configs = Path(bundle_dir) / "configs"
    if not configs.is_dir():
        return []
    return sorted(p for p in configs.iterdir() if p.suffix.lower() in CONFIG_SUFFIXES and p.is_file())


def python_files(bundle_dir: Path) -> List[Path]:
    """Every ``.py`` file a config could import once the bundle root is on ``sys.path`` (sorted)."""
    bundle_dir = Path(bundle_dir)
    out = []
    for path in sorted(bundle_dir.rglob("*.py")):
        rel = path.relative_to(bundle_dir)
        if all(part.isidentifier() for part in rel.with_suffix("").parts):
            out.append(path)
    return out


# --- names in expressions ------------------------------------------------------------------------

def _dotted(node: ast.AST) -> Optional[str]:
    """``a.b.c`` for a chain of attributes on a name; ``__import__('os').system`` counts as ``os.system``."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__"
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        parts.append(node.args[0].value)
        return ".".join(reversed(parts))
    return None


def import_aliases(statement: str) -> Dict[str, str]:
    """Names bound by a ``$import x`` / ``$from x import y as z`` line (name -> dotted module path)."""
    try:
        tree = ast.parse(statement)
    except SyntaxError:
        return {}
    out: Dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                out[alias.asname or alias.name] = f"{node.module or ''}.{alias.name}".lstrip(".")
    return out


def expression_names(expression: str, aliases: Mapping[str, str]) -> Tuple[List[str], List[str]]:
    """Dotted names an expression (without its ``$``) uses, resolved through ``aliases``, and the problems found.

    ``@id`` references are replaced by a placeholder first (they are other config values). Names bound inside the
    expression (lambda arguments, comprehension variables) are not reported. Dunder attributes (``x.__class__``)
    are reported as problems wherever they appear.
    """
    source = _REF.sub(_REF_PLACEHOLDER, expression.strip())
    try:
        tree = ast.parse(source, mode="exec")
    except SyntaxError as err:
        return [], [f"does not parse as Python ({err.msg})"]
    bound: Set[str] = {_REF_PLACEHOLDER}
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
    names: List[str] = []
    problems: List[str] = []
    local = dict(aliases)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imported = import_aliases(ast.unparse(node))
            local.update(imported)
            names.extend(imported.values())
        elif isinstance(node, ast.Attribute):
            base = _dotted(node)
            unnamed = base is None or base.split(".")[0] in bound  # on a call result, a reference, a lambda argument
            if node.attr.startswith("__") and node.attr.endswith("__"):
                problems.append(f"attribute .{node.attr}")
            elif unnamed and (node.attr in RISKY_ATTRIBUTES or node.attr in RISKY_MODULES):
                problems.append(f"attribute .{node.attr}")
    seen_attr_chains: Set[int] = set()
    for node in ast.walk(tree):
        if id(node) in seen_attr_chains or not isinstance(node, (ast.Attribute, ast.Name)):
            continue
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            continue
        dotted = _dotted(node)
        inner: ast.expr = node
        while isinstance(inner, ast.Attribute):  # report the longest chain once
            inner = inner.value
            seen_attr_chains.add(id(inner))
        if dotted is None:
            continue
        head, _, rest = dotted.partition(".")
        if head in bound:
            continue
        resolved = local.get(head) or MONAI_GLOBALS.get(head) or head
        full = f"{resolved}.{rest}" if rest else resolved
        if full not in names:
            names.append(full)
    return names, problems


# --- the scan -------------------------------------------------------------------------------------

def _walk(value: Any, path: Tuple[str, ...]) -> Iterator[Tuple[Tuple[str, ...], Any]]:
    yield path, value
    if isinstance(value, Mapping):
        for key, sub in value.items():
            yield from _walk(sub, path + (str(key),))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from _walk(sub, path + (str(i),))


def _target_reaches(target: str) -> Tuple[str, Tuple[str, ...]]:
    """(resolved name, outside) of a string ``_target_`` that is not an expression or reference."""
    if "." in target:
        return target, ((target,) if outside_allow_list(target) else ())
    if target in monai_component_names():
        return f"{target} (MONAI)", ()
    return target, (f"{target} (not a MONAI component: resolves to a builtin or a module of that name)",)


def scan_config(data: Any, rel: str, aliases: Mapping[str, str], bundle_dir: Path) -> List[CodeFinding]:
    """Findings of one config's data (``rel`` names the file in them)."""
    findings: List[CodeFinding] = []
    for path, value in _walk(data, ()):
        json_path = "::".join(path)
        if isinstance(value, str) and value.startswith("$"):
            names, problems = expression_names(value[1:], aliases)
            outside = tuple(problems) + tuple(n for n in names if outside_allow_list(n))
            findings.append(CodeFinding(rel, json_path, "expression", value, tuple(names), outside))
        elif isinstance(value, str) and value.startswith("%"):
            match = _FILE_IN_MACRO.match(value[1:])
            if match:
                ref = match.group(1)
                outside = () if _inside(bundle_dir, ref) else (f"{ref} is outside the bundle",)
                findings.append(CodeFinding(rel, json_path, "macro", value, (ref,), outside))
        elif isinstance(value, Mapping) and "_target_" in value:
            target = value["_target_"]
            if isinstance(target, str) and not target.startswith(("$", "@")):
                resolved, outside = _target_reaches(target)
                findings.append(CodeFinding(rel, json_path, "target", target, (resolved,), outside))
        if isinstance(value, Mapping) and "_requires_" in value:
            requires = value["_requires_"]
            refs = [r for r in (requires if isinstance(requires, list) else [requires])
                    if isinstance(r, str) and r.startswith("@")]
            if refs:
                findings.append(CodeFinding(rel, f"{json_path}::_requires_".lstrip(":"), "requires",
                                            ", ".join(refs), tuple(refs)))
    return findings


def _inside(bundle_dir: Path, ref: str) -> bool:
    """Whether a macro's file reference names a file inside the bundle (MONAI reads it relative to the
    working directory, so only relative paths without ``..`` that exist in the bundle count)."""
    candidate = Path(ref)
    if candidate.is_absolute() or ".." in candidate.parts:
        return False
    return (Path(bundle_dir) / candidate).is_file()


def _stdlib_or_installed(module: str) -> bool:
    if module in sys.stdlib_module_names or module in sys.builtin_module_names:
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def scan_python_file(path: Path, bundle_dir: Path) -> CodeFinding:
    """A finding for one importable ``.py`` file: its module name, and warnings for shadowing a real module or
    importing risky modules."""
    rel = path.relative_to(bundle_dir)
    module = ".".join(rel.with_suffix("").parts)
    if module.endswith(".__init__"):
        module = module[: -len(".__init__")]
    outside: List[str] = []
    top = module.split(".")[0]
    if top != BUNDLE_SCRIPTS and _stdlib_or_installed(top):
        outside.append(f"shadows the module {top}")
    try:
        tree = ast.parse(path.read_bytes())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for name in import_aliases(ast.unparse(node)).values():
                    if name.split(".")[0] in RISKY_MODULES:
                        outside.append(f"imports {name}")
    except (SyntaxError, ValueError, OSError) as err:
        outside.append(f"cannot be parsed ({err})")
    return CodeFinding(str(rel), "", "python_file", f"module {module}", (module,), tuple(dict.fromkeys(outside)))


def scan_bundle(bundle_dir: Union[str, Path]) -> CodeScan:
    """All code findings of the bundle at ``bundle_dir``, read without evaluating anything."""
    bundle_dir = Path(bundle_dir)
    scan = CodeScan(bundle_dir)
    loaded: List[Tuple[str, Any]] = []
    for path in config_files(bundle_dir):
        rel = path.relative_to(bundle_dir).as_posix()
        if path.is_symlink() and not _resolves_inside(path, bundle_dir):
            scan.findings.append(CodeFinding(rel, "", "macro", f"symlink to {path.resolve()}", (str(path.resolve()),),
                                             ("a symlink to a file outside the bundle",)))
        try:
            loaded.append((rel, load_config_data(path)))
        except (ValueError, OSError, UnicodeDecodeError) as err:
            scan.unreadable.append(f"{rel}: {str(err).splitlines()[0] if str(err) else type(err).__name__}")
        except Exception as err:  # noqa: BLE001 - yaml's errors have many types; none may escape a static scan
            scan.unreadable.append(f"{rel}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
    aliases: Dict[str, str] = {}
    for _, data in loaded:  # MONAI shares one globals dict: an import anywhere binds the name everywhere
        for _, value in _walk(data, ()):
            if isinstance(value, str) and value.startswith("$") and "import" in value:
                aliases.update(import_aliases(value[1:].strip()))
    for rel, data in loaded:
        scan.findings += scan_config(data, rel, aliases, bundle_dir)
    for path in python_files(bundle_dir):
        scan.findings.append(scan_python_file(path, bundle_dir))
    return scan


def _resolves_inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(Path(root).resolve())
        return True
    except ValueError:
        return False
