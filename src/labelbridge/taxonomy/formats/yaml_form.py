"""The YAML form of a mapping (:mod:`labelbridge.taxonomy.ontology`) as text, in the
layout of the built-in files: lists in flow style, notes as a literal block."""

from __future__ import annotations

from pathlib import Path

import yaml

from labelbridge.taxonomy.ontology import Ontology


class _FlowListDumper(yaml.SafeDumper):
    """Lists in flow style (``[a, b]``), mappings in block style, as in the built-in files."""


_FlowListDumper.add_representer(
    list,
    lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True),
)


def _literal_text(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_FlowListDumper.add_representer(str, _literal_text)


def ontology_to_yaml(onto: Ontology, *, base_dir: Path | None = None) -> str:
    """The mapping in the YAML form of :mod:`labelbridge.taxonomy.ontology`; taxonomies
    that are not built in are named by path relative to ``base_dir`` (the folder it is
    written to)."""
    return yaml.dump(
        onto.to_dict(base_dir=base_dir),
        Dumper=_FlowListDumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )
