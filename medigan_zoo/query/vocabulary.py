"""The zoo's controlled vocabulary: DICOM modality codes, search synonyms and the text normalizer.

Pure Python (no torch, monai or numpy): it sits on the fast search/list path.

* Modalities: ``modality_codes``, ``canonical_modality``, ``modality_names`` map free-text modality names
  (medigan's ``"Full-Field Mammography"``, ``"MMG"``, ``"T1"``, ``"CXR"``, ...) to DICOM codes and back.
* Normalizer: ``tokenize`` lowercases, splits on non-alphanumerics, keeps image shapes such as ``128x128``
  (``"128 x 128"`` too) as one token and folds plurals (``masses`` -> ``mass``, ``modalities`` -> ``modality``).
* Synonyms: ``analyze`` rewrites tokens to canonical search terms (``mmg`` -> ``mammography``,
  ``cxr`` -> ``chest xray``, ``wgan-gp`` -> ``wgangp``); ``expand_term`` lists a term's equivalents.
"""
from __future__ import annotations

import functools
import re
from typing import Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple

from medigan_zoo.core.errors import ZooError

__all__ = [
    "MODALITY_CODES", "modality_codes", "modality_names", "modality_terms", "canonical_modality", "is_modality_code",
    "normalize", "tokenize", "fold_plural", "analyze", "expand_term", "broader_terms", "STOPWORDS",
]

# --------------------------------------------------------------------------------------------------
# Tokenizer / normalizer
# --------------------------------------------------------------------------------------------------
_SHAPE_RE = re.compile(r"(?<![a-z0-9])\d+(?:\s*[x\u00d7*]\s*\d+)+(?![a-z0-9])")
_TOKEN_RE = re.compile(r"[a-z0-9]+")
_SHAPE_TOKEN_RE = re.compile(r"^\d+(?:x\d+)+$")
_NO_FOLD = frozenset({
    "us", "gas", "thorax", "pancreas", "diabetes", "series", "species", "lens", "ddsm",
    "bus", "virus", "corpus", "uterus", "fetus", "bias", "iris", "axis", "ras", "kvasir", "ars", "sas",
    "cbis", "brats", "atlas", "dcis", "pelvis", "aids", "news", "class", "loss", "cross", "less", "glass",
    "csaw", "mias", "this", "does", "his", "hers", "yes", "adenosis", "fibrosis", "sclerosis", "stenosis",
    "metastasis",
})

STOPWORDS = frozenset({
    "a", "an", "the", "of", "and", "or", "with", "for", "in", "on", "to", "from", "is", "are", "was", "were",
    "that", "this", "these", "those", "be", "as", "at", "it", "its", "into", "via", "using", "which", "than",
})


def fold_plural(token: str) -> str:
    """Simple English plural -> singular folding: modalities -> modality, masses -> mass, rois -> roi.

    Tokens with digits (``t1``, ``128x128``), tokens of 3 letters or fewer and a few Latin/Greek words
    (``thorax``, ``pelvis``, ``metastasis``) are kept as they are.
    """
    if len(token) <= 3 or not token.isalpha() or token in _NO_FOLD:
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith(("sses", "shes", "ches", "xes", "zes")):
        return token[:-2]
    if token.endswith(("ss", "us", "sis", "xis")):
        return token
    if token.endswith("s"):
        return token[:-1]
    return token


def _raw_spans(text: str) -> List[Tuple[str, str, int, int]]:
    """(normalized token, original spelling, start, end) per token; ``128 x 128`` becomes ``128x128``."""
    text = str(text)
    lowered = text.lower()
    out: List[Tuple[str, str, int, int]] = []
    pos = 0
    for match in _SHAPE_RE.finditer(lowered):
        out += _plain_spans(text, lowered, pos, match.start())
        shape = re.sub(r"\s+", "", match.group(0)).replace("\u00d7", "x").replace("*", "x")
        out.append((shape, text[match.start():match.end()], match.start(), match.end()))
        pos = match.end()
    out += _plain_spans(text, lowered, pos, len(text))
    return out


_FOLDED: Dict[str, str] = {}


def _fold(token: str) -> str:
    folded = _FOLDED.get(token)
    if folded is None:
        folded = fold_plural(token)
        if len(_FOLDED) < 200_000:
            _FOLDED[token] = folded
    return folded


def _plain_spans(text: str, lowered: str, start: int, end: int) -> List[Tuple[str, str, int, int]]:
    out = []
    for m in _TOKEN_RE.finditer(lowered, start, end):
        a, b = m.span()
        out.append((_fold(m.group(0)), text[a:b], a, b))
    return out


def _raw_tokens(text: str) -> List[Tuple[str, str]]:
    """(normalized token, original spelling) pairs."""
    return [(tok, orig) for tok, orig, _, _ in _raw_spans(text)]


def tokenize(text: str) -> List[str]:
    """Lowercase word tokens of ``text`` with shapes kept whole and plurals folded (stopwords kept)."""
    return [tok for tok, _ in _raw_tokens(text)]


def normalize(text: str) -> str:
    """``text`` as its normalized tokens joined by single spaces: ``"Full-Field MMGs"`` -> ``"full field mmg"``."""
    return " ".join(tokenize(text))


def _key(phrase: str) -> Tuple[str, ...]:
    return tuple(tokenize(phrase))


# --------------------------------------------------------------------------------------------------
# Modalities
# --------------------------------------------------------------------------------------------------
MODALITY_CODES: Tuple[str, ...] = ("CR", "DX", "MG", "US", "MR", "CT", "OP", "XC", "SM", "ES", "PT", "NM", "OT")

# code -> human names (first = primary). modality_names() returns these.
_MODALITY_NAMES: Dict[str, Tuple[str, ...]] = {
    "CR": ("computed radiography", "radiography", "x-ray", "xray"),
    "DX": ("digital radiography", "radiography", "x-ray", "xray", "radiograph"),
    "MG": ("mammography", "mammogram", "MMG", "full-field digital mammography", "FFDM"),
    "US": ("ultrasound", "sonography", "ultrasonography", "USG"),
    "MR": ("MRI", "magnetic resonance imaging", "magnetic resonance", "MR imaging"),
    "CT": ("computed tomography", "CT scan"),
    "OP": ("ophthalmic photography", "fundus photography", "retinal fundus", "fundus"),
    "XC": ("external camera photography", "dermoscopy", "dermatoscopy", "clinical photography"),
    "SM": ("slide microscopy", "histopathology", "whole slide imaging", "WSI", "pathology"),
    "ES": ("endoscopy", "colonoscopy", "endoscopic imaging"),
    "PT": ("PET", "positron emission tomography"),
    "NM": ("nuclear medicine", "scintigraphy", "SPECT"),
    "OT": ("other",),
}

# Further phrases recognised as a modality (besides the names above and the code itself).
_MODALITY_EXTRA: Dict[str, Tuple[str, ...]] = {
    "CR": ("CR",),
    "DX": ("DX", "x ray", "radiographic", "plain film", "projection radiography", "CXR", "chest x-ray",
           "chest radiograph", "chest radiography", "thoracic x-ray", "chest film", "digital x-ray"),
    "MG": ("MG", "mammographic", "full-field mammography", "full field digital mammography",
           "digital mammography", "x-ray mammography", "digital x-ray mammography", "screen film mammography",
           "MMG", "full-field MMG", "digital MMG", "DBT", "digital breast tomosynthesis", "breast tomosynthesis",
           "tomosynthesis", "synthetic mammography", "CESM", "contrast enhanced spectral mammography",
           "contrast enhanced mammography", "FFDM"),
    "US": ("US", "ultrasound imaging", "ultrasonic", "sonographic", "echography", "echocardiography",
           "doppler", "breast ultrasound", "BUS", "ABUS"),
    "MR": ("MR", "MRI", "MRI scan", "magnetic resonance", "MR imaging", "nuclear magnetic resonance", "NMR",
           "T1", "T2", "T1w", "T2w", "T1c", "T1ce", "T1Gd", "T1-weighted", "T2-weighted", "T1 contrast-enhanced",
           "FLAIR", "PD-weighted", "proton density", "DWI", "diffusion weighted", "diffusion-weighted imaging",
           "ADC", "DCE-MRI", "DCE", "DCEMRI", "dynamic contrast enhanced", "fat-saturated", "fat saturation",
           "fMRI", "functional MRI", "cardiac MRI", "CMR", "cine MRI", "SWI", "MRA", "TOF", "bold"),
    "CT": ("CT", "computed tomography", "computerized tomography", "computerised tomography", "CAT scan",
           "CT scan", "CBCT", "cone beam CT", "cone-beam computed tomography", "LDCT", "low dose CT", "CTA",
           "CT angiography", "contrast enhanced CT", "HRCT"),
    "OP": ("OP", "fundus", "fundus photography", "fundus photograph", "fundus image", "retinal fundus",
           "color fundus", "colour fundus", "CFP", "fundoscopy", "funduscopy", "retinal photography",
           "retinal image", "ophthalmic photography", "ophthalmoscopy"),
    "XC": ("XC", "dermoscopy", "dermatoscopy", "dermoscopic", "dermatoscopic", "dermoscope", "dermatoscope",
           "epiluminescence microscopy", "external camera", "external camera photography",
           "clinical photography", "clinical photograph", "skin lesion image", "macroscopic photography"),
    "SM": ("SM", "slide microscopy", "whole slide", "whole slide image", "whole slide imaging", "WSI",
           "histopathology", "histopathological", "histology", "histological", "pathology", "digital pathology",
           "H&E", "hematoxylin and eosin", "haematoxylin and eosin", "microscopy", "cytology"),
    "ES": ("ES", "endoscopy", "endoscopic", "gastrointestinal endoscopy", "GI endoscopy", "colonoscopy",
           "colonoscopic", "gastroscopy", "capsule endoscopy", "wireless capsule endoscopy", "laparoscopy",
           "bronchoscopy", "cystoscopy"),
    "PT": ("PT", "PET", "PET scan", "positron emission tomography", "FDG PET"),
    "NM": ("NM", "nuclear medicine", "scintigraphy", "SPECT", "single photon emission", "gamma camera",
           "bone scan"),
    "OT": ("OT",),
}

# Vague phrases: they name a modality only when nothing more specific is in the same terms
# (medigan's cardiac model lists "Cardiac imaging" and "full-field digital" next to "MRI").
_MODALITY_WEAK: Dict[str, Tuple[str, ...]] = {
    "MG": ("full-field digital", "full field", "breast imaging"),
    "ES": ("polyp", "polyps", "gastrointestinal"),
    "XC": ("skin", "skin lesion", "dermatology", "melanoma", "nevus", "nevi"),
    "OP": ("retina", "retinal", "eye", "ophthalmic", "ophthalmology"),
    "OT": ("other", "cardiac imaging", "cardiography", "medical imaging", "imaging"),
}

# 2-letter DICOM codes that are also English words or abbreviations: recognised only as a whole term
# ("US") or when written in capitals inside running text ("breast US"), never as "let us".
_CODE_LIKE = {c.lower() for c in MODALITY_CODES if c not in ("MR", "CT")} | {"bus", "bold", "tof", "adc", "cfp"}


def _build_modality_phrases() -> Dict[Tuple[str, ...], Tuple[str, bool]]:
    table: Dict[Tuple[str, ...], Tuple[str, bool]] = {}
    for weak, source in ((True, _MODALITY_WEAK), (False, _MODALITY_NAMES), (False, _MODALITY_EXTRA)):
        for code, phrases in source.items():
            for phrase in (code, *phrases) if not weak else phrases:
                key = _key(phrase)
                if key and (key not in table or not weak):
                    if key in table and not table[key][1] and table[key][0] != code:
                        continue  # first strong mapping wins (CR's "x-ray" is DX's as well: keep DX)
                    table[key] = (code, weak)
    # generic radiography names belong to DX (digital radiography); CR only by its own names
    for phrase in ("radiography", "x-ray", "xray", "x ray", "radiograph"):
        table[_key(phrase)] = ("DX", False)
    return table


_MODALITY_PHRASES = _build_modality_phrases()
_MODALITY_MAXLEN = max(len(k) for k in _MODALITY_PHRASES)


def is_modality_code(text: str) -> bool:
    """True for one of the zoo's DICOM modality codes (case-insensitive)."""
    return str(text).strip().upper() in MODALITY_CODES


def _scan_modalities(text: str) -> Tuple[List[str], List[str]]:
    """(strong codes, weak codes) found in ``text`` in reading order, greedy longest phrase first."""
    raw = _raw_tokens(text)
    tokens = [t for t, _ in raw]
    strong: List[str] = []
    weak: List[str] = []
    i = 0
    whole = len(tokens)
    while i < len(tokens):
        for n in range(min(_MODALITY_MAXLEN, len(tokens) - i), 0, -1):
            key = tuple(tokens[i:i + n])
            hit = _MODALITY_PHRASES.get(key)
            if hit is None:
                continue
            if n == 1 and key[0] in _CODE_LIKE and whole > 1 and not raw[i][1].isupper():
                continue  # "let us", "5 mg": a code inside running text counts only in capitals
            if key == ("other",) and whole > 1:
                continue  # "other" names OT only as a whole term
            (weak if hit[1] else strong).append(hit[0])
            i += n - 1
            break
        i += 1
    return strong, weak


def _codes_of_term(text: str) -> Tuple[List[str], List[str]]:
    text = str(text).strip()
    if is_modality_code(text):
        return [text.upper()], []
    return _scan_modalities(text)


def modality_codes(terms: Iterable[str]) -> List[str]:
    """Sorted unique DICOM codes named by ``terms`` (case, punctuation and plural tolerant).

    Vague terms ("full-field digital", "cardiac imaging", "polyp") count only when no specific modality
    name appears among all ``terms``: ``["MRI", "Cardiac imaging"]`` -> ``["MR"]``.
    """
    if isinstance(terms, str):
        terms = [terms]
    strong: Set[str] = set()
    weak: Set[str] = set()
    for term in terms:
        s, w = _codes_of_term(term)
        strong.update(s)
        weak.update(w)
    if strong:
        return sorted(strong)
    return sorted(weak)


def canonical_modality(text: str) -> Optional[str]:
    """The DICOM code ``text`` names ("Full-Field Mammography" -> "MG", "t1" -> "MR"), else None.

    With several modalities in ``text`` ("PET/CT") the first one wins.
    """
    strong, weak = _codes_of_term(text)
    if strong:
        return strong[0]
    return weak[0] if weak else None


def modality_names(code: str) -> List[str]:
    """Human names of a DICOM modality code, primary name first: ``"MG"`` -> ``["mammography", ...]``."""
    key = str(code).strip().upper()
    if key not in _MODALITY_NAMES:
        raise ZooError(f"Unknown modality code {code!r}. Known codes: {', '.join(MODALITY_CODES)}.")
    return list(_MODALITY_NAMES[key])


def modality_terms(terms: Iterable[str]) -> List[str]:
    """``terms`` with the DICOM codes they name and each code's names, once each: the one modality expansion of
    the medigan view, the medigan search fields and the zoo search fields.

    A term that is a code is followed by its names (``["MG"]`` -> ``["MG", "mammography", ...]``); codes that
    other terms name come after all terms (``["MMG"]`` -> ``["MMG", "MG", "mammography", ...]``).
    """
    if isinstance(terms, str):
        terms = [terms]
    out: List[str] = []
    seen: Set[str] = set()

    def add(term: str) -> None:
        if term not in seen:
            seen.add(term)
            out.append(term)

    terms = [str(t) for t in terms if t not in (None, "")]
    for term in terms:
        add(term)
        if term in _MODALITY_NAMES:
            for name in _MODALITY_NAMES[term]:
                add(name)
    for code in modality_codes(terms):
        if code not in seen:
            add(code)
            for name in _MODALITY_NAMES[code]:
                add(name)
    return out


# --------------------------------------------------------------------------------------------------
# Search synonyms
# --------------------------------------------------------------------------------------------------
# canonical term(s) <- equivalent phrases. A canonical of several words ("chest xray") means the phrase
# stands for all of them (CXR is chest + x-ray). Applied to queries and to indexed text alike.
_SYNONYMS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    # modalities
    ("mammography", ("mammogram", "mammographic", "mmg", "mg", "ffdm", "x ray mammography",
                     "digital x ray mammography", "mammo")),
    ("tomosynthesis", ("dbt", "digital breast tomosynthesis", "breast tomosynthesis")),
    ("xray", ("x ray", "xray", "radiograph", "radiography", "radiographic", "dx", "cr", "roentgen")),
    ("chest xray", ("cxr", "chest x ray", "chest radiograph", "chest radiography", "chest film")),
    ("mri", ("mr", "magnetic resonance", "magnetic resonance imaging", "mr imaging", "nmr")),
    ("cardiac mri", ("cmr",)),
    ("dce mri", ("dcemri", "dce mri")),
    ("t1", ("t1w", "t1 weighted")),
    ("t2", ("t2w", "t2 weighted")),
    ("t1c", ("t1ce", "t1gd", "t1 contrast enhanced", "t1 post contrast")),
    ("flair", ("t2 flair",)),
    ("dwi", ("diffusion weighted", "diffusion weighted imaging")),
    ("ct", ("computed tomography", "computerized tomography", "computerised tomography", "cat scan")),
    ("ultrasound", ("us", "usg", "sonography", "ultrasonography", "sonographic", "ultrasonic", "echography")),
    ("pet", ("pt", "positron emission tomography")),
    ("nuclear medicine", ("nm",)),
    ("spect", ("single photon emission computed tomography",)),
    ("endoscopy", ("endoscopic", "endoscope", "es")),
    ("colonoscopy", ("colonoscopic",)),
    ("dermoscopy", ("dermatoscopy", "dermoscopic", "dermatoscopic", "dermoscope", "dermatoscope", "xc",
                    "epiluminescence microscopy")),
    ("histopathology", ("histology", "histological", "histopathological", "pathology", "pathological",
                        "wsi", "whole slide image", "whole slide imaging", "h e", "hematoxylin eosin",
                        "haematoxylin eosin", "hematoxylin and eosin", "haematoxylin and eosin",
                        "digital pathology", "sm")),
    ("retina", ("retinal", "fundus", "eye", "ocular", "ophthalmic", "ophthalmology", "op", "fundoscopy",
                "funduscopy", "cfp", "color fundus", "colour fundus")),
    # anatomy
    ("breast", ("mammary",)),
    ("chest", ("thorax", "thoracic")),
    ("lung", ("pulmonary",)),
    ("brain", ("cerebral", "cranial", "intracranial", "head", "neuro")),
    ("heart", ("cardiac", "cardio", "myocardial")),
    ("skin", ("dermal", "cutaneous", "dermatology", "dermatological")),
    ("colon", ("colonic", "colorectal")),
    ("gastrointestinal", ("gi",)),
    ("tumor", ("tumour",)),
    ("calcification", ("calc", "calcified")),
    ("malignant", ("malignancy",)),
    ("roi", ("region of interest", "region interest")),
    # tasks / use cases
    ("classification", ("clf", "cls", "classify", "classifier", "classifying", "classified")),
    ("segmentation", ("seg", "segment", "segmenting", "segmented")),
    ("detection", ("det", "detect", "detector", "detecting")),
    ("generation", ("generate", "generating", "generator")),
    ("synthesis", ("synthesize", "synthesise", "synthesizing", "synthesising", "synthetic")),
    ("augmentation", ("augment", "augmenting", "augmented")),
    ("inpainting", ("inpaint", "inpainted")),
    ("translation", ("translate", "translating", "i2i", "image to image translation")),
    ("conditional", ("conditioned", "conditioning", "condition", "cond")),
    ("unconditional", ("unconditioned",)),
    ("dimension", ("dimensional",)),
    ("2d", ("2 d", "two dimensional", "2 dimensional", "planar")),
    ("3d", ("3 d", "three dimensional", "3 dimensional", "volumetric", "volume")),
    # architectures
    ("gan", ("generative adversarial network", "generative adversarial net", "adversarial network")),
    ("dcgan", ("deep convolutional gan", "deep convolutional generative adversarial network", "dc gan")),
    ("conditional dcgan", ("cdcgan", "c dcgan", "conditional deep convolutional gan")),
    ("conditional gan", ("cgan", "c gan")),
    ("wgangp", ("wgan gp", "wgan gradient penalty", "wasserstein gan gp", "wasserstein gan gradient penalty",
                "wgangp")),
    ("wgan", ("wasserstein gan", "wasserstein")),
    ("pggan", ("progan", "pgan", "pg gan", "progressive gan", "progressive growing gan", "progressively growing gan",
               "progressive growing of gan", "progressively grown gan", "progressively growing", "progressive")),
    ("cyclegan", ("cycle gan", "cycle consistent gan", "cycle consistent adversarial network", "cycle consistent")),
    ("pix2pix", ("pix 2 pix", "pix2pix gan")),
    ("stylegan", ("style gan", "style based gan")),
    ("stylegan2", ("stylegan 2", "style gan 2", "stylegan2 ada", "stylegan2ada")),
    ("ddpm", ("denoising diffusion probabilistic model", "denoising diffusion", "denoising diffusion model")),
    ("ddim", ("denoising diffusion implicit model",)),
    ("ldm", ("latent diffusion", "latent diffusion model", "stable diffusion")),
    ("diffusion", ("diffusion model", "score based generative model", "score based model")),
    ("vae", ("variational autoencoder", "variational auto encoder")),
    ("autoencoder", ("auto encoder", "ae")),
    # data sets
    ("inbreast", ("in breast",)),
    ("cbisddsm", ("cbis ddsm", "curated breast imaging subset of ddsm")),
    ("optimam", ("omi db", "omidb", "optimam mammography image database")),
    ("bcdr", ("breast cancer digital repository",)),
    ("csaw", ("csaw cc", "csaw s", "cohort of screen aged women")),
    ("chestxray14", ("chestx ray14", "chest x ray14", "chest x ray 14", "chestxray 14", "nih chest x ray",
                     "nih chest xray")),
    ("hyperkvasir", ("hyper kvasir",)),
    ("ukbiobank", ("uk biobank",)),
    ("crossmoda", ("cross moda",)),
    # misc
    ("gray", ("grey",)),
    ("grayscale", ("greyscale", "gray scale", "grey scale")),
    ("color", ("colour", "rgb")),
    ("fid", ("frechet inception distance",)),
)

# Broader terms, added to indexed text only: a DCGAN is found by "gan", a T1 image by "mri".
_BROADER: Dict[str, Tuple[str, ...]] = {
    "dcgan": ("gan",), "wgangp": ("wgan", "gan"), "wgan": ("gan",), "pggan": ("gan",), "cyclegan": ("gan",),
    "pix2pix": ("gan",), "pix2pixhd": ("pix2pix", "gan"), "stylegan": ("gan",), "stylegan2": ("stylegan", "gan"),
    "stylegan3": ("stylegan", "gan"), "fastgan": ("gan",), "singan": ("gan",), "biggan": ("gan",),
    "mammogan": ("gan",), "lsgan": ("gan",), "acgan": ("conditional", "gan"), "infogan": ("gan",),
    "ddpm": ("diffusion",), "ddim": ("diffusion",), "ldm": ("diffusion",), "vae": ("autoencoder",),
    "t1": ("mri",), "t2": ("mri",), "t1c": ("t1", "mri"), "flair": ("mri",), "dwi": ("mri",), "dce": ("mri",),
    "tomosynthesis": ("mammography",), "colonoscopy": ("endoscopy",), "dermoscopy": ("skin",),
    "microcalcification": ("calcification",), "cbisddsm": ("ddsm",), "lung": ("chest",),
    "polyp": ("colon",),
}


def _build_synonyms() -> Tuple[Dict[Tuple[str, ...], Tuple[str, ...]], int]:
    table: Dict[Tuple[str, ...], Tuple[str, ...]] = {}
    for canonical, variants in _SYNONYMS:
        target = _key(canonical)
        for phrase in (canonical, *variants):
            key = _key(phrase)
            if key and key not in table:
                table[key] = target
    return table, max(len(k) for k in table)


_PHRASES, _PHRASE_MAXLEN = _build_synonyms()
# first token -> phrase lengths starting with it, longest first (keeps the greedy scan cheap)
_FIRST: Dict[str, Tuple[int, ...]] = {}
for _k in _PHRASES:
    _FIRST[_k[0]] = tuple(sorted(set(_FIRST.get(_k[0], ())) | {len(_k)}, reverse=True))


def _rewrite(tokens: Sequence[str], originals: Optional[Sequence[str]] = None
             ) -> List[Tuple[Tuple[str, ...], int, int]]:
    """Greedy longest-phrase rewrite: [(canonical tokens, start, end)] over ``tokens``.

    A code-like word ("us", "mg", "pt") is rewritten only when written in capitals or when it is the
    whole text, so "let us" stays "let us" while "breast US" means ultrasound.
    """
    out = []
    i = 0
    whole = len(tokens)
    while i < whole:
        for n in _FIRST.get(tokens[i], ()):
            if i + n > whole:
                continue
            key = tuple(tokens[i:i + n])
            target = _PHRASES.get(key)
            if (target is not None and n == 1 and key[0] in _CODE_LIKE and whole > 1
                    and originals is not None and not originals[i].isupper()):
                target = None
            if target is not None and not (n == 1 and key[0] in STOPWORDS):
                out.append((target, i, i + n))
                i += n
                break
        else:
            out.append(((tokens[i],), i, i + 1))
            i += 1
    return out


def broader_terms(term: str) -> Tuple[str, ...]:
    """Broader index terms of a canonical term: ``dcgan`` -> ``("gan",)``, ``128x128`` -> ``("128",)``."""
    if _SHAPE_TOKEN_RE.match(term):
        return tuple(dict.fromkeys(term.split("x")))
    return _BROADER.get(term, ())


def analyze(text: str, broader: bool = False) -> List[str]:
    """Canonical search terms of ``text``: tokens, synonyms applied, stopwords dropped.

    With ``broader`` (indexed text) broader terms are added after each term: ``"DCGAN"`` -> ``["dcgan", "gan"]``.
    """
    return list(_analyze(str(text), bool(broader)))


@functools.lru_cache(maxsize=1 << 16)
def _analyze(text: str, broader: bool) -> Tuple[str, ...]:
    out: List[str] = []
    raw = _raw_tokens(text)
    for target, _, _ in _rewrite([t for t, _ in raw], [o for _, o in raw]):
        for term in target:
            if term in STOPWORDS:
                continue
            out.append(term)
            if broader:
                out.extend(broader_terms(term))
    return tuple(out)


def analyze_groups(text: str) -> List[Tuple[str, Tuple[str, ...]]]:
    """Query-side analysis: [(surface words, canonical terms)] per recognised word or phrase of ``text``.

    ``"CXR dcgan"`` -> ``[("cxr", ("chest", "xray")), ("dcgan", ("dcgan",))]``; stopwords are dropped.
    """
    raw = _raw_spans(text)
    tokens = [t[0] for t in raw]
    groups = []
    for target, start, end in _rewrite(tokens, [t[1] for t in raw]):
        terms = tuple(t for t in target if t not in STOPWORDS)
        if terms:
            surface = str(text)[raw[start][2]:raw[end - 1][3]].lower()
            groups.append((surface, terms))
    return groups


def expand_term(token: str) -> Set[str]:
    """Normalized equivalents of a word or phrase: ``"MMG"`` -> ``{"mmg", "mammography", "mammogram", ...}``.

    Multi-word equivalents are joined by spaces (``"CXR"`` -> ``{"cxr", "chest xray", "chest x ray", ...}``).
    An unknown term gives just its own normalized form.
    """
    key = _key(token)
    if not key:
        return set()
    rewritten = _rewrite(key)
    target = tuple(t for r, _, _ in rewritten for t in r)
    out = {" ".join(key), " ".join(target)}
    out.update(" ".join(k) for k, v in _SYNONYM_INVERSE.get(target, ()))
    return out


def _build_inverse() -> Dict[Tuple[str, ...], FrozenSet[Tuple[Tuple[str, ...], Tuple[str, ...]]]]:
    inverse: Dict[Tuple[str, ...], Set[Tuple[Tuple[str, ...], Tuple[str, ...]]]] = {}
    for key, target in _PHRASES.items():
        inverse.setdefault(target, set()).add((key, target))
    return {k: frozenset(v) for k, v in inverse.items()}


_SYNONYM_INVERSE = _build_inverse()
