"""Connector options: pydantic models that turn a bad option into a `ConfigError` naming it.

Options are what `config()` returns and `from_config` accepts. They are published to Kafka so that another
process can rebuild the connector, so they never hold secrets (`reject_secrets`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from freight.errors import ConfigError

#: Option names that look like credentials; they are refused everywhere in store configs.
SECRET_OPTION_NAMES = frozenset(
    {
        "key",
        "secret",
        "token",
        "password",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "access_key",
        "secret_key",
        "session_token",
        "credentials",
    }
)


def reject_secrets(kind: str, options: Mapping[str, Any]) -> None:
    """Raise ConfigError if `options` carries anything that looks like a credential."""
    found = sorted(k for k in options if k.lower() in SECRET_OPTION_NAMES)
    if found:
        raise ConfigError(
            f"the {kind} connector options contain credentials ({', '.join(found)}); store options are "
            "published to Kafka, so credentials never go there. Set them in each process's environment "
            "instead (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, or AWS_PROFILE)."
        )


class ConnectorOptions(BaseModel):
    """Base of connector option models: unknown options are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Connector kind named in error messages.
    kind_name: ClassVar[str] = "connector"

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> Self:
        """Validate `options`; a bad or unknown option is a ConfigError that names it."""
        reject_secrets(cls.kind_name, options)
        try:
            return cls.model_validate(dict(options))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(options)'}: {err['msg']}" for err in exc.errors()
            )
            known = ", ".join(cls.model_fields)
            raise ConfigError(
                f"invalid options for the {cls.kind_name} connector: {problems} (known options: {known})"
            ) from None
