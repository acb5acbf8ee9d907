"""One small module per published dataset layout; importing this package registers
every reader (and the preparers of the datasets that need ``datasets prepare``)."""

import importlib
import pkgutil

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if not _module.startswith("_"):
        importlib.import_module(f"{__name__}.{_module}")
