"""Taxonomies (class lists) and ontology mappings between them, loaded from data files."""

from labelbridge.taxonomy.ontology import IGNORE_ROW, UNLABELLED_POLICIES, Ontology, load_ontology
from labelbridge.taxonomy.registry import (
    list_mappings,
    list_taxonomies,
    load_taxonomy,
    mapping_path,
)
from labelbridge.taxonomy.taxonomy import Taxonomy, TaxonomyClass

__all__ = [
    "IGNORE_ROW",
    "UNLABELLED_POLICIES",
    "Ontology",
    "Taxonomy",
    "TaxonomyClass",
    "list_mappings",
    "list_taxonomies",
    "load_ontology",
    "load_taxonomy",
    "mapping_path",
]
