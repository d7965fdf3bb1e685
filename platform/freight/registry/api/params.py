"""Path and query parameters shared by the routers, with Confluent's names and the OpenAPI descriptions."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator

from freight.registry.api.gate import SLASH_IN_SEGMENT

Subject = Annotated[
    str,
    Path(description="Subject name (URL-encode a '/' in it as %2F)"),
    AfterValidator(lambda value: value.replace(SLASH_IN_SEGMENT, "/")),
]
Version = Annotated[str, Path(description='A version number in [1, 2^31-1], "latest" or -1')]
Deleted = Annotated[bool, Query(description="Include soft-deleted entries")]
DeletedOnly = Annotated[bool, Query(alias="deletedOnly", description="Only soft-deleted entries")]
DeletedOnlySnake = Annotated[bool, Query(alias="deleted_only", description="Same as deletedOnly")]
DefaultToGlobal = Annotated[
    bool, Query(alias="defaultToGlobal", description="Fall back to the global setting")
]
SchemaId = Annotated[int, Path(description="Schema id")]
SubjectPrefix = Annotated[str, Query(alias="subjectPrefix", description="Only subjects starting with this")]
Format = Annotated[
    str | None,
    Query(
        description='"serialized": a PROTOBUF schema as the base64 of its FileDescriptorProto (as '
        "confluent-kafka's Protobuf serializer and deserializer ask for it); other types ignore it"
    ),
]
