"""One validated config model per stage, loaded from YAML with ``--set`` overrides."""

from labelbridge.config.base import (
    StrictModel,
    apply_overrides,
    dump_config,
    load_config,
    validate_config,
)

__all__ = ["StrictModel", "apply_overrides", "dump_config", "load_config", "validate_config"]
