"""Source adapters: one module per family of file formats.

Importing this package registers every adapter with
:func:`pipelines.ingest.adapters.base.register_adapter`.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")
