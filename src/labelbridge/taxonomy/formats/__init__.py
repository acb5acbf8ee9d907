"""Ontology mappings as tables: the reference CSV (``master_labels_<source>.csv``) and an
MSeg-style TSV, next to the YAML form of :mod:`labelbridge.taxonomy.ontology`.

Both tables have **one row per source train class** listing the extra labels whose pixels
may be that class, plus one *void* row listing the extra labels written as ignore. The
full layout is in ``docs/ontology-format.md``; in short:

Reference CSV (UniBwTAS/data-priors, read with ``csv.reader``; its loader skips the first
row)::

    ,name,,,
    0,road,Road,LaneMkgsDriv,
    1,sidewalk,Sidewalk,,
    ...
    255,void,Animal,Void,

column 1 = source train id (``255`` = the void row), column 2 = source class name, then the
extra label names; rows are padded with empty cells to one width.

MSeg-style TSV (MSeg ``MSeg_master.tsv``: one row per universal class, one column per
dataset, ``{a, b}`` for several classes, empty cell for none)::

    cityscapes<TAB>camvid11
    road<TAB>Road
    building<TAB>{Building, Fence}
    unlabeled<TAB>{Void}

What neither table can carry - the taxonomy names, the ``unlabelled`` policy and projection
overrides - is written as ``# key: value`` comment lines above the table (``metadata=True``,
the default) or given as arguments when reading. With the metadata, YAML -> CSV -> YAML and
YAML -> TSV -> YAML give the same relation (:meth:`Ontology.same_as`).

Modules:

* :mod:`~labelbridge.taxonomy.formats.files`: reading and writing a mapping file in any
  of :data:`FORMATS` (format by extension), and the notes of an import;
* :mod:`~labelbridge.taxonomy.formats.reference_csv`: the reference CSV and its
  ``labels.csv``, the reference's path convention;
* :mod:`~labelbridge.taxonomy.formats.mseg_tsv`: the MSeg-style TSV and MSeg's pairwise
  ``<from>_to_<to>.tsv`` files;
* :mod:`~labelbridge.taxonomy.formats.yaml_form`: the YAML form as text;
* :mod:`~labelbridge.taxonomy.formats.table`: table rows <-> mapping, shared by both
  tables (what an import decides, the projection rule);
* :mod:`~labelbridge.taxonomy.formats.metadata`: the ``# key: value`` metadata and how it
  combines with the arguments.
"""

from labelbridge.taxonomy.formats.files import (
    FORMATS,
    carries_metadata,
    format_from_path,
    import_notes,
    ontology_to_text,
    read_ontology,
    verify_written,
    write_ontology,
)
from labelbridge.taxonomy.formats.metadata import METADATA_KEYS, projection_json
from labelbridge.taxonomy.formats.mseg_tsv import (
    TSV_VOID_NAME,
    ontology_from_pairwise_tsv,
    ontology_from_tsv,
    ontology_to_tsv,
    pairwise_columns,
)
from labelbridge.taxonomy.formats.reference_csv import (
    CSV_VOID_NAME,
    LABELS_CSV_COLUMNS,
    REFERENCE_PREFIX,
    labels_csv_text,
    ontology_from_csv,
    ontology_to_csv,
    reference_taxonomies,
)
from labelbridge.taxonomy.formats.table import projection_rule_choice, rule_projection
from labelbridge.taxonomy.formats.yaml_form import ontology_to_yaml

__all__ = [
    "CSV_VOID_NAME",
    "FORMATS",
    "LABELS_CSV_COLUMNS",
    "METADATA_KEYS",
    "REFERENCE_PREFIX",
    "TSV_VOID_NAME",
    "carries_metadata",
    "format_from_path",
    "import_notes",
    "labels_csv_text",
    "ontology_from_csv",
    "ontology_from_pairwise_tsv",
    "ontology_from_tsv",
    "ontology_to_csv",
    "ontology_to_text",
    "ontology_to_tsv",
    "ontology_to_yaml",
    "pairwise_columns",
    "projection_json",
    "projection_rule_choice",
    "read_ontology",
    "reference_taxonomies",
    "rule_projection",
    "verify_written",
    "write_ontology",
]
