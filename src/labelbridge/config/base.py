"""Loading stage configs: YAML file -> ``--set key=value`` overrides -> pydantic model.

Every stage has one config model (a subclass of :class:`StrictModel`, which refuses
unknown keys). Errors name the file, the key path and, where known, the line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from labelbridge.errors import ConfigError
from labelbridge.files import write_text_atomic
from labelbridge.yamlio import LinedYaml, load_yaml

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base of config models: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to nested dicts.

    List items are addressed by index: ``datasets.0.weight=2``.

    Raises:
        ConfigError: malformed override.
    """
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.path=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML: {exc}") from None
        parts = key.strip().split(".")
        node: Any = data
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                try:
                    idx = int(part)
                    node[idx]
                except (ValueError, IndexError):
                    raise ConfigError(
                        f"override {item!r}: {part!r} is not a valid list index"
                    ) from None
                if last:
                    node[idx] = value
                else:
                    node = node[idx]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
            else:
                raise ConfigError(f"override {item!r}: {'.'.join(parts[:i])!r} is not a mapping")
    return data


def _format_validation_error(exc: ValidationError, source: str, doc: LinedYaml | None) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        where = doc.where(*loc) if doc is not None else source
        path = ".".join(str(p) for p in loc) or "(top level)"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{where}: {path}: {msg}")
    return "invalid config:\n  " + "\n  ".join(lines)


def validate_config(
    model: type[M], data: Any, *, source: str = "<config>", doc: LinedYaml | None = None
) -> M:
    """Validate plain data against ``model``.

    Raises:
        ConfigError: listing each problem with file:line, key path and message.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a config file must be a YAML mapping")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source, doc)) from None


def load_config(model: type[M], path: str | Path, overrides: list[str] | None = None) -> M:
    """Load a YAML config file, apply overrides, validate.

    Relative paths inside configs are the config models' business; this function only
    parses. Use :func:`config_dir` to resolve them against the file's folder if needed.
    """
    doc = load_yaml(path)
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a YAML mapping")
    data = apply_overrides(data, overrides)
    return validate_config(model, data, source=str(path), doc=doc)


def dump_config(cfg: BaseModel, path: str | Path) -> None:
    """Write a config back as YAML, atomically (used to record the resolved config of a
    run, which a resumed run compares with its own)."""
    write_text_atomic(path, yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))


def canonical_paths(data: Any) -> Any:
    """``data`` (nested dicts and lists) with every string that names an existing file or
    folder replaced by its resolved absolute path, so ``runs/world`` and
    ``/abs/runs/world`` compare equal."""
    if isinstance(data, dict):
        return {k: canonical_paths(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [canonical_paths(v) for v in data]
    if isinstance(data, str) and data and ("/" in data or os.sep in data):
        try:
            path = Path(data)
            if path.exists():
                return str(path.resolve())
        except (OSError, ValueError):
            pass
    return data


def config_changes(
    old: Any, new: Any, *, ignore: tuple[str, ...] = (), prefix: str = ""
) -> list[str]:
    """Dotted keys whose values differ between two nested configs (paths compared by
    :func:`canonical_paths`), each as ``"key: old -> new"``; keys in ``ignore`` (dotted,
    e.g. ``trainer.log_every_n_steps``) are left out.

    Example:
        >>> config_changes({"a": 1, "b": {"c": [1, 2]}}, {"a": 2, "b": {"c": [1, 3]}})
        ['a: 1 -> 2', 'b.c.1: 2 -> 3']
    """
    if prefix in ignore:
        return []
    old, new = canonical_paths(old), canonical_paths(new)
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in [*old, *(k for k in new if k not in old)]:
            sub = f"{prefix}.{key}" if prefix else str(key)
            out += config_changes(old.get(key), new.get(key), ignore=ignore, prefix=sub)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out += config_changes(a, b, ignore=ignore, prefix=f"{prefix}.{i}" if prefix else str(i))
        return out
    if old == new:
        return []
    return [f"{prefix}: {_short(old)} -> {_short(new)}"]


def _short(value: Any, limit: int = 60) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("...").strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."
