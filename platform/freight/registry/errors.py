"""Confluent Schema Registry error responses: an HTTP status plus a numeric `error_code` and a message.

The codes are the ones Confluent documents (40401 subject not found, 42201 invalid schema, ...), so clients
written for Confluent Schema Registry react to Freight's registry in the same way. Every constructor names
what was wrong and, where it helps, what to do.
"""

from __future__ import annotations

from typing import Any


class RegistryHTTPError(Exception):
    """An error the HTTP layer turns into `{"error_code": ..., "message": ...}` with `status`."""

    def __init__(self, status: int, error_code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error_code": self.error_code, "message": self.message}


class WriterFencedError(Exception):
    """Another registry instance took over the writer role while this one was writing; retry the write."""


class WriteAbortedError(Exception):
    """The broker aborted the write's transaction (not a fencing); plan and write it again."""


class WriterMovedError(Exception):
    """Another instance took the writer role over during a client's write; relay the write to it."""


class StoreUnavailableError(Exception):
    """The `_schemas` topic could not be read or written (broker down, timeout)."""


def subject_not_found(subject: str) -> RegistryHTTPError:
    return RegistryHTTPError(404, 40401, f"Subject '{subject}' not found.")


def version_not_found(subject: str, version: int | str) -> RegistryHTTPError:
    return RegistryHTTPError(404, 40402, f"Version {version} not found for subject '{subject}'.")


def schema_not_found(schema_id: int | None = None) -> RegistryHTTPError:
    what = "Schema not found" if schema_id is None else f"Schema {schema_id} not found"
    return RegistryHTTPError(404, 40403, what)


def subject_soft_deleted(subject: str) -> RegistryHTTPError:
    return RegistryHTTPError(
        404,
        40404,
        f"Subject '{subject}' was soft deleted. Set permanent=true to delete permanently",
    )


def subject_not_soft_deleted(subject: str) -> RegistryHTTPError:
    return RegistryHTTPError(
        404,
        40405,
        f"Subject '{subject}' was not deleted first before being permanently deleted: delete it without "
        "permanent=true first",
    )


def version_soft_deleted(subject: str, version: int) -> RegistryHTTPError:
    return RegistryHTTPError(
        404,
        40406,
        f"Subject '{subject}' Version {version} was soft deleted. Set permanent=true to delete permanently",
    )


def version_not_soft_deleted(subject: str, version: int) -> RegistryHTTPError:
    return RegistryHTTPError(
        404,
        40407,
        f"Subject '{subject}' Version {version} was not deleted first before being permanently deleted: "
        "delete it without permanent=true first",
    )


def subject_compatibility_not_configured(subject: str) -> RegistryHTTPError:
    return RegistryHTTPError(
        404,
        40408,
        f"Subject '{subject}' does not have subject-level compatibility configured; "
        "add defaultToGlobal=true to get the global level",
    )


def subject_mode_not_configured(subject: str) -> RegistryHTTPError:
    return RegistryHTTPError(
        404,
        40409,
        f"Subject '{subject}' does not have subject-level mode configured; "
        "add defaultToGlobal=true to get the global mode",
    )


def incompatible_schema(subject: str, details: list[str]) -> RegistryHTTPError:
    return RegistryHTTPError(
        409,
        409,
        f'Schema being registered is incompatible with an earlier schema for subject "{subject}", '
        f"details: [{'; '.join(details)}]",
    )


def invalid_schema(detail: str) -> RegistryHTTPError:
    return RegistryHTTPError(422, 42201, f"Invalid schema: {detail}")


def invalid_version(version: str) -> RegistryHTTPError:
    return RegistryHTTPError(
        422,
        42202,
        f"The specified version '{version}' is not a valid version id. Allowed values are between "
        '[1, 2^31-1] and the string "latest"',
    )


def invalid_compatibility(level: object, valid: list[str]) -> RegistryHTTPError:
    what = (
        'No compatibility level given: send {"compatibility": "<level>"}'
        if level is None
        else f"Invalid compatibility level {level!r}"
    )
    return RegistryHTTPError(422, 42203, f"{what}. Valid values are: {', '.join(valid)}")


def invalid_mode(mode: object, valid: list[str]) -> RegistryHTTPError:
    what = 'No mode given: send {"mode": "<mode>"}' if mode is None else f"Invalid mode {mode!r}"
    return RegistryHTTPError(422, 42204, f"{what}. Valid values are: {', '.join(valid)}")


def operation_not_permitted(message: str) -> RegistryHTTPError:
    return RegistryHTTPError(422, 42205, message)


def reference_exists(subject: str, version: int, by: list[int]) -> RegistryHTTPError:
    ids = ", ".join(str(i) for i in by)
    return RegistryHTTPError(
        422,
        42206,
        f"One or more references exist to the schema {{subject={subject}, version={version}}}: referenced "
        f"by schema id(s) {ids}. Delete the referencing schemas first",
    )


def id_does_not_match(schema_id: int) -> RegistryHTTPError:
    return RegistryHTTPError(
        422,
        42207,
        f"Schema id {schema_id} is already used by a different schema; import it under a new id",
    )


def invalid_subject(subject: str, why: str) -> RegistryHTTPError:
    return RegistryHTTPError(422, 42208, f"Invalid subject {subject!r}: {why}")


def schema_too_large(size: int, limit: int) -> RegistryHTTPError:
    return RegistryHTTPError(
        422,
        42209,
        f"Schema is too large: {size} bytes, the limit is {limit} bytes (registry option --max-schema-bytes)",
    )


def store_error(detail: str) -> RegistryHTTPError:
    return RegistryHTTPError(500, 50001, f"Error in the backend data store: {detail}")


def operation_timeout(detail: str) -> RegistryHTTPError:
    return RegistryHTTPError(500, 50002, f"Operation timed out: {detail}")
