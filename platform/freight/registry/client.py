"""A small typed HTTP client of the registry API for Freight's own tools (the `freight schemas` CLI).

Applications use confluent-kafka's `SchemaRegistryClient` (see freight.schemas.serde); this client exists so
that the CLI can reach endpoints and parameters that one does not expose (defaultToGlobal, deleted lookups)
and turn every failure into a FreightError: `SchemaError` for an answer with an error code (the message keeps
the registry's code), `ServiceUnavailableError` when nothing answers.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from freight.config import FreightSettings
from freight.errors import SchemaError, ServiceUnavailableError
from freight.redact import redact_text, redact_url

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryRequestError(SchemaError):
    """The registry answered with an error; `status` and `error_code` are Confluent's."""

    def __init__(self, message: str, status: int, error_code: int) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class RegistryClient:
    """Blocking client of one registry URL."""

    def __init__(
        self, url: str, *, auth: str | None = None, timeout: float = 30.0, tls: ssl.SSLContext | None = None
    ) -> None:
        self.url = url.rstrip("/")
        basic: tuple[str, str] | None = None
        if auth:
            user, sep, password = auth.partition(":")
            if not sep:
                raise SchemaError("registry auth must be user:password (FREIGHT_SCHEMA_REGISTRY_AUTH)")
            basic = (user, password)
        self._http = httpx.Client(
            base_url=self.url,
            auth=basic,
            timeout=timeout,
            headers={"Accept": MEDIA_TYPE},
            verify=tls if tls is not None else True,
        )

    @classmethod
    def from_settings(cls, settings: FreightSettings, url: str | None = None) -> RegistryClient:
        auth = settings.schema_registry_auth.get_secret_value() if settings.schema_registry_auth else None
        return cls(url or settings.schema_registry_url, auth=auth, tls=settings.registry_ssl_context())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, *, json: Any = None, **params: Any) -> Any:
        """Call the API; return the decoded JSON body (a string for raw-schema endpoints)."""
        query = {k: _param(v) for k, v in params.items() if v is not None}
        try:
            response = self._http.request(method, path, json=json, params=query)
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(
                f"the schema registry at {redact_url(self.url)} did not answer "
                f"({type(exc).__name__}: {redact_text(str(exc))}). {_unreachable_advice(self.url)}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            if isinstance(body, dict) and "error_code" in body:
                code = int(body["error_code"])
                raise RegistryRequestError(
                    f"{body.get('message')} (error code {code})", response.status_code, code
                )
            raise RegistryRequestError(
                f"HTTP {response.status_code} from {redact_url(self.url)}{path}: {str(body)[:200]}",
                response.status_code,
                -1,
            )
        return body

    # ---------------------------------------------------------------------------------------- endpoints

    def register(
        self,
        subject: str,
        schema: str,
        references: list[dict[str, Any]] | None = None,
        schema_type: str = "AVRO",
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"schema": schema, "schemaType": schema_type}
        if references:
            body["references"] = references
        result: dict[str, Any] = self.request("POST", f"/subjects/{_seg(subject)}/versions", json=body)
        return result

    def subjects(self, *, prefix: str = "", deleted: bool = False) -> list[str]:
        result: list[str] = self.request("GET", "/subjects", subjectPrefix=prefix or None, deleted=deleted)
        return result

    def versions(self, subject: str, *, deleted: bool = False) -> list[int]:
        result: list[int] = self.request("GET", f"/subjects/{_seg(subject)}/versions", deleted=deleted)
        return result

    def version(self, subject: str, version: str = "latest", *, deleted: bool = False) -> dict[str, Any]:
        path = f"/subjects/{_seg(subject)}/versions/{_seg(version)}"
        result: dict[str, Any] = self.request("GET", path, deleted=deleted)
        return result

    def schema_by_id(self, schema_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/schemas/ids/{schema_id}")
        result["id"] = schema_id
        result["subjects"] = self.request("GET", f"/schemas/ids/{schema_id}/subjects", deleted=True)
        return result

    def check(
        self, subject: str, schema: str, version: str | None = None, schema_type: str = "AVRO"
    ) -> dict[str, Any]:
        path = f"/compatibility/subjects/{_seg(subject)}/versions"
        if version is not None:
            path += f"/{_seg(version)}"
        body = {"schema": schema, "schemaType": schema_type}
        result: dict[str, Any] = self.request("POST", path, json=body, verbose=True)
        return result

    def compatibility(self, subject: str | None) -> str:
        path = "/config" if subject is None else f"/config/{_seg(subject)}"
        return str(self.request("GET", path, defaultToGlobal=True)["compatibilityLevel"])

    def set_compatibility(self, subject: str | None, level: str) -> str:
        path = "/config" if subject is None else f"/config/{_seg(subject)}"
        return str(self.request("PUT", path, json={"compatibility": level})["compatibility"])

    def reset_compatibility(self, subject: str | None) -> None:
        path = "/config" if subject is None else f"/config/{_seg(subject)}"
        try:
            self.request("DELETE", path)
        except RegistryRequestError as exc:
            if exc.error_code != 40401:  # nothing set for the subject: already reset
                raise

    def mode(self, subject: str | None) -> str:
        path = "/mode" if subject is None else f"/mode/{_seg(subject)}"
        return str(self.request("GET", path, defaultToGlobal=True)["mode"])

    def set_mode(self, subject: str | None, mode: str, *, force: bool = False) -> str:
        path = "/mode" if subject is None else f"/mode/{_seg(subject)}"
        return str(self.request("PUT", path, json={"mode": mode}, force=force or None)["mode"])

    def delete(self, subject: str, version: str | None = None, *, permanent: bool = False) -> list[int]:
        path = f"/subjects/{_seg(subject)}" + ("" if version is None else f"/versions/{_seg(version)}")
        result = self.request("DELETE", path, permanent=permanent or None)
        return [int(v) for v in result] if isinstance(result, list) else [int(result)]


def _seg(value: str) -> str:
    """One URL path segment (a subject may contain '/', '?', spaces...)."""
    return quote(str(value), safe="")


def _param(value: Any) -> Any:
    return ("true" if value else "false") if isinstance(value, bool) else value


def _unreachable_advice(url: str) -> str:
    """What to do when the registry does not answer: `freight dev up` only for a registry on this machine."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.startswith("127.") or host == "::1":
        return (
            "Start it with `freight dev up` (or `freight registry serve`), or point --url / "
            "FREIGHT_SCHEMA_REGISTRY_URL at a running registry."
        )
    return (
        "Check the host and port in FREIGHT_SCHEMA_REGISTRY_URL (or --url), that the registry is up, "
        "and that this machine may reach it (firewall, VPN, TLS settings)."
    )
