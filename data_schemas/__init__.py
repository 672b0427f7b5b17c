"""Versioned data contracts shared by every stage: Arrow schemas, the manifest, the blocklist, atomic writers.

Stages never import each other; they agree only on what is in this package.  See ``data_schemas/README.md`` for
every field.
"""

from data_schemas import storage
from data_schemas.blocklist import BLOCKLIST_NAME, BlockEntry, Blocklist
from data_schemas.faults import fault_point
from data_schemas.io import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_parquet,
    atomic_write_parquet_chunks,
    file_sha256,
)
from data_schemas.layout import (
    AUX_SUFFIX,
    CURATE_DIR,
    SCORE_PART_GLOB,
    SCORES_DIR,
    SCORES_INFO,
    score_part_name,
    scores_dir,
)
from data_schemas.manifest import MANIFEST_NAME, MANIFEST_VERSION, TAKEDOWN_PENDING, Manifest, ShardInfo, member_path
from data_schemas.schemas import (
    CAPTION_ORIGINS,
    CAPTION_PREFERENCE,
    CLEAN_SCHEMA,
    CLEAN_VERSION,
    RAW_SCHEMA,
    RAW_VERSION,
    ROLES,
    SCORES_META_MODEL,
    SCORES_META_SHARD,
    SCORES_SCHEMA,
    SCORES_VERSION,
    SOURCE_KINDS,
    SchemaError,
    empty_table,
    is_safe_key,
    row_id,
    schema_name,
    schema_version,
    validate,
)

__all__ = [
    "BLOCKLIST_NAME",
    "AUX_SUFFIX",
    "CURATE_DIR",
    "SCORE_PART_GLOB",
    "SCORES_DIR",
    "SCORES_INFO",
    "SCORES_META_MODEL",
    "SCORES_META_SHARD",
    "SCORES_SCHEMA",
    "SCORES_VERSION",
    "BlockEntry",
    "Blocklist",
    "CAPTION_ORIGINS",
    "CAPTION_PREFERENCE",
    "CLEAN_SCHEMA",
    "CLEAN_VERSION",
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "Manifest",
    "RAW_SCHEMA",
    "RAW_VERSION",
    "ROLES",
    "SOURCE_KINDS",
    "SchemaError",
    "ShardInfo",
    "TAKEDOWN_PENDING",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_parquet",
    "atomic_write_parquet_chunks",
    "empty_table",
    "fault_point",
    "file_sha256",
    "is_safe_key",
    "member_path",
    "row_id",
    "schema_name",
    "schema_version",
    "score_part_name",
    "scores_dir",
    "storage",
    "validate",
]
