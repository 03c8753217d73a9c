"""medigan_zoo: a model zoo of pretrained generative models for medical image synthesis, built on MONAI bundles.

Search and listing need neither torch nor monai; they are imported only when a model runs.

    >>> from medigan_zoo import Generators
    >>> gens = Generators()
    >>> gens.search("chest x-ray conditional")[0].model_id
    'chest_xray_cdcgan'
"""
from medigan_zoo.core import monai_import

monai_import.install()  # before anything imports monai: keeps the MONAI Deploy SDK out of `import monai`

from medigan_zoo.catalog.model_info import ConditionSpec, Metric, ModelInfo, OptionSpec  # noqa: E402
from medigan_zoo.core.errors import (  # noqa: E402
    BundleNotAvailableError,
    GenerationError,
    MetadataError,
    MetricNotFoundError,
    ModelNotFoundError,
    UntrustedBundleError,
    ZooError,
)
from medigan_zoo.core.version import __version__  # noqa: E402
from medigan_zoo.generators import Generators  # noqa: E402

__all__ = [
    "Generators", "ModelInfo", "Metric", "ConditionSpec", "OptionSpec", "list_models", "get_model_info", "search",
    "ZooError", "ModelNotFoundError", "MetricNotFoundError", "MetadataError", "BundleNotAvailableError",
    "GenerationError", "UntrustedBundleError", "__version__",
]


def list_models(**index_kwargs) -> list:
    """Ids of the models in the zoo (torchvision-style shortcut for ``Generators().list_models()``)."""
    return Generators(**index_kwargs).list_models()


def get_model_info(model_id, **index_kwargs) -> ModelInfo:
    """Typed metadata of one model."""
    return Generators(**index_kwargs).get_model_info(model_id)


def search(query, filters=None, limit=None, **index_kwargs):
    """Ranked free-text search over the zoo."""
    return Generators(**index_kwargs).search(query, filters=filters, limit=limit)
