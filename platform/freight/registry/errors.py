"""The registry's domain errors: what went wrong, as a `Problem`, and a message naming what to do.

The planner and the service raise `RegistryError`; they know nothing of HTTP. The API layer maps each
`Problem` to an HTTP status and Confluent's numeric `error_code` in one table (`freight.registry.api.http`),
so clients written for Confluent Schema Registry react to Freight's registry in the same way. Every
constructor below names what was wrong and, where it helps, what to do.
"""

from __future__ import annotations

import enum


class Problem(enum.Enum):
    """Every kind of failure a registry request can end in."""

    SUBJECT_NOT_FOUND = "subject not found"
    VERSION_NOT_FOUND = "version not found"
    SCHEMA_NOT_FOUND = "schema not found"
    SUBJECT_SOFT_DELETED = "subject soft-deleted"
    SUBJECT_NOT_SOFT_DELETED = "subject not soft-deleted before a permanent delete"
    VERSION_SOFT_DELETED = "version soft-deleted"
    VERSION_NOT_SOFT_DELETED = "version not soft-deleted before a permanent delete"
    SUBJECT_LEVEL_NOT_SET = "no subject-level compatibility"
    SUBJECT_MODE_NOT_SET = "no subject-level mode"
    INCOMPATIBLE_SCHEMA = "incompatible schema"
    INVALID_SCHEMA = "invalid schema"
    INVALID_VERSION = "invalid version"
    INVALID_COMPATIBILITY = "invalid compatibility level"
    INVALID_MODE = "invalid mode"
    NOT_PERMITTED = "operation not permitted"
    REFERENCE_EXISTS = "referenced by other schemas"
    ID_MISMATCH = "id used by another schema"
    INVALID_SUBJECT = "invalid subject"
    SCHEMA_TOO_LARGE = "schema too large"
    STORE_ERROR = "backend store error"
    TIMEOUT = "operation timed out"


class RegistryError(Exception):
    """A request the registry refuses or could not carry out: `problem` is the kind, `message` the rest."""

    def __init__(self, problem: Problem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


class WriterFencedError(Exception):
    """Another registry instance took over the writer role while this one was writing; retry the write."""


class WriteAbortedError(Exception):
    """The broker aborted the write's transaction (not a fencing); plan and write it again."""


class WriterMovedError(Exception):
    """Another instance took the writer role over during a client's write; relay the write to it."""


class StoreUnavailableError(Exception):
    """The `_schemas` topic could not be read or written (broker down, timeout)."""


def subject_not_found(subject: str) -> RegistryError:
    return RegistryError(Problem.SUBJECT_NOT_FOUND, f"Subject '{subject}' not found.")


def version_not_found(subject: str, version: int | str) -> RegistryError:
    return RegistryError(Problem.VERSION_NOT_FOUND, f"Version {version} not found for subject '{subject}'.")


def schema_not_found(schema_id: int | None = None) -> RegistryError:
    what = "Schema not found" if schema_id is None else f"Schema {schema_id} not found"
    return RegistryError(Problem.SCHEMA_NOT_FOUND, what)


def subject_soft_deleted(subject: str) -> RegistryError:
    return RegistryError(
        Problem.SUBJECT_SOFT_DELETED,
        f"Subject '{subject}' was soft deleted. Set permanent=true to delete permanently",
    )


def subject_not_soft_deleted(subject: str) -> RegistryError:
    return RegistryError(
        Problem.SUBJECT_NOT_SOFT_DELETED,
        f"Subject '{subject}' was not deleted first before being permanently deleted: delete it without "
        "permanent=true first",
    )


def version_soft_deleted(subject: str, version: int) -> RegistryError:
    return RegistryError(
        Problem.VERSION_SOFT_DELETED,
        f"Subject '{subject}' Version {version} was soft deleted. Set permanent=true to delete permanently",
    )


def version_not_soft_deleted(subject: str, version: int) -> RegistryError:
    return RegistryError(
        Problem.VERSION_NOT_SOFT_DELETED,
        f"Subject '{subject}' Version {version} was not deleted first before being permanently deleted: "
        "delete it without permanent=true first",
    )


def subject_compatibility_not_configured(subject: str) -> RegistryError:
    return RegistryError(
        Problem.SUBJECT_LEVEL_NOT_SET,
        f"Subject '{subject}' does not have subject-level compatibility configured; "
        "add defaultToGlobal=true to get the global level",
    )


def subject_mode_not_configured(subject: str) -> RegistryError:
    return RegistryError(
        Problem.SUBJECT_MODE_NOT_SET,
        f"Subject '{subject}' does not have subject-level mode configured; "
        "add defaultToGlobal=true to get the global mode",
    )


def incompatible_schema(subject: str, details: list[str]) -> RegistryError:
    return RegistryError(
        Problem.INCOMPATIBLE_SCHEMA,
        f'Schema being registered is incompatible with an earlier schema for subject "{subject}", '
        f"details: [{'; '.join(details)}]",
    )


def invalid_schema(detail: str) -> RegistryError:
    return RegistryError(Problem.INVALID_SCHEMA, f"Invalid schema: {detail}")


def invalid_version(version: str) -> RegistryError:
    return RegistryError(
        Problem.INVALID_VERSION,
        f"The specified version '{version}' is not a valid version id. Allowed values are between "
        '[1, 2^31-1] and the string "latest"',
    )


def invalid_compatibility(level: object, valid: list[str]) -> RegistryError:
    what = (
        'No compatibility level given: send {"compatibility": "<level>"}'
        if level is None
        else f"Invalid compatibility level {level!r}"
    )
    return RegistryError(Problem.INVALID_COMPATIBILITY, f"{what}. Valid values are: {', '.join(valid)}")


def invalid_mode(mode: object, valid: list[str]) -> RegistryError:
    what = 'No mode given: send {"mode": "<mode>"}' if mode is None else f"Invalid mode {mode!r}"
    return RegistryError(Problem.INVALID_MODE, f"{what}. Valid values are: {', '.join(valid)}")


def operation_not_permitted(message: str) -> RegistryError:
    return RegistryError(Problem.NOT_PERMITTED, message)


def reference_exists(subject: str, version: int, by: list[int]) -> RegistryError:
    ids = ", ".join(str(i) for i in by)
    return RegistryError(
        Problem.REFERENCE_EXISTS,
        f"One or more references exist to the schema {{subject={subject}, version={version}}}: referenced "
        f"by schema id(s) {ids}. Delete the referencing schemas first",
    )


def id_does_not_match(schema_id: int) -> RegistryError:
    return RegistryError(
        Problem.ID_MISMATCH,
        f"Schema id {schema_id} is already used by a different schema; import it under a new id",
    )


def invalid_subject(subject: str, why: str) -> RegistryError:
    return RegistryError(Problem.INVALID_SUBJECT, f"Invalid subject {subject!r}: {why}")


def schema_too_large(size: int, limit: int) -> RegistryError:
    return RegistryError(
        Problem.SCHEMA_TOO_LARGE,
        f"Schema is too large: {size} bytes, the limit is {limit} bytes (registry option --max-schema-bytes)",
    )


def store_error(detail: str) -> RegistryError:
    return RegistryError(Problem.STORE_ERROR, f"Error in the backend data store: {detail}")


def operation_timeout(detail: str) -> RegistryError:
    return RegistryError(Problem.TIMEOUT, f"Operation timed out: {detail}")
