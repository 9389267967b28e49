"""Import Robotoff predictions (JSON Lines, plain or gzip) and questions (JSON) as insights.

The file is read as a stream (a line, or one question, at a time) and written in batches, so a
file of millions of lines takes constant memory. The flow, module by module:

- runs: an upload over HTTP is stored as an InsightImport and imported by an RQ job;
- importing: insights_import, the one entry point for a file (the job's, the import_insights
  command's), reads it and writes its records in batches, under the tenant's locks;
- reading: a file's gzip and format detected, its records read one at a time within the limits;
- records: a record validated, as the fields of an insight;
- planning: what a batch does (create, update, leave alone), by Robotoff's re-import rule;
- copy_writer: a batch written (COPY on PostgreSQL, bulk_create / bulk_update elsewhere);
- replacing: once the whole file is read, the tenant's insights that predictions replace deleted;
- tuning: the interpreter's settings while imports run.
"""

from annotations.importer.importing import insights_import
from annotations.importer.planning import ImportCounts
from annotations.importer.reading import FORMATS, BadLine, ImportRefused
from annotations.importer.runs import (
    ImportSweep,
    import_progress,
    insight_import_create,
    insight_import_run,
    insight_imports_sweep,
)

__all__ = [
    "FORMATS",
    "BadLine",
    "ImportCounts",
    "ImportRefused",
    "ImportSweep",
    "import_progress",
    "insight_import_create",
    "insight_import_run",
    "insight_imports_sweep",
    "insights_import",
]
