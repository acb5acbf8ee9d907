"""labelbridge: one label space from many segmentation datasets.

Layers (each imports only from those before it)::

    taxonomy -> data -> models -> engine / evaluation -> pseudo -> pipeline -> cli
"""

from labelbridge.constants import IGNORE_INDEX

__all__ = ["IGNORE_INDEX", "__version__"]
__version__ = "0.1.0"
