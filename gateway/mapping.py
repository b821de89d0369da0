"""The mapping file: which chargers are known (by id or pattern) and how id tags are authorized.

The file is YAML, validated strictly (unknown keys refused) and cross-checked after parsing; every problem is
reported with the file, the line and the entry it concerns.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.identity import identity_problem
from gateway.settings import RegistrationStatus
from gateway.yamlsource import SourceError, SourceIssue, YamlDocument, load_yaml


def _must_be_text(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        # YAML reads 49839108034579556 as a number (and 0123 as octal 83): make the user quote it.
        raise ValueError(f"write {value} in quotes: YAML reads it as a number, an id must be text")
    return value


Text = Annotated[str, BeforeValidator(_must_be_text)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KnownCharger(StrictModel):
    """A charger entry: an exact `id`, or a `pattern` (`*` and `?` wildcards) such as `C1-*` for amina serials."""

    id: Text | None = Field(None, description="Exact charge point id.")
    pattern: str | None = Field(None, description="Glob matched against the charge point id, e.g. 'C1-*'.")
    name: str | None = Field(None, description="A name people use for this charger.")
    registration: RegistrationStatus = Field(
        RegistrationStatus.ACCEPTED, description="BootNotification answer for matching chargers."
    )
    retry_interval: int | None = Field(
        None, ge=1, description="Seconds before a charger that was not Accepted boots again (default: guest)."
    )

    @field_validator("id")
    @classmethod
    def _valid_identity(cls, value: str | None) -> str | None:
        if value is not None and (problem := identity_problem(value)):
            raise ValueError(problem)
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern_not_empty(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("pattern is empty")
        return value

    @model_validator(mode="after")
    def _id_or_pattern(self) -> Self:
        if (self.id is None) == (self.pattern is None):
            raise ValueError("give exactly one of 'id' or 'pattern'")
        return self

    def matches(self, charge_point_id: str) -> bool:
        if self.id is not None:
            return self.id == charge_point_id
        return fnmatchcase(charge_point_id, self.pattern or "")


class AuthorizationMode(StrEnum):
    """How Authorize and StartTransaction answer (seed 003 §5.4)."""

    AUTHORIZE_ALL = "authorize-all"
    AUTHORIZE_NONE = "authorize-none"
    ALL_EXCEPT_BLACKLIST = "all-except-blacklist"
    NONE_EXCEPT_WHITELIST = "none-except-whitelist"


class IdTagEntry(StrictModel):
    """An id tag on a list; a bare string in the file is shorthand for `{id_tag: ...}`."""

    id_tag: Text = Field(
        min_length=1, max_length=20, description="The id tag (IdToken, up to 20 characters)."
    )
    expiry_date: datetime | None = Field(None, description="After this the tag answers Expired.")
    parent_id_tag: Text | None = Field(None, max_length=20, description="Group id tag handed to the charger.")

    @property
    def key(self) -> str:
        return self.id_tag.casefold()


def _tag_shorthand(value: Any) -> Any:
    return value if isinstance(value, dict) else {"id_tag": value}


IdTagItem = Annotated[IdTagEntry, BeforeValidator(_tag_shorthand, json_schema_input_type=str | IdTagEntry)]


class Authorization(StrictModel):
    """The authorization policy and its lists (id tags compare case-insensitively, as OCPP's IdToken does)."""

    mode: AuthorizationMode = AuthorizationMode.AUTHORIZE_ALL
    whitelist: list[IdTagItem] = Field(default_factory=list)
    blacklist: list[IdTagItem] = Field(default_factory=list)


class Mapping(StrictModel):
    """The whole mapping file."""

    version: int = Field(1, ge=1, le=1, description="Mapping file format version.")
    chargers: list[KnownCharger] = Field(default_factory=list)
    authorization: Authorization = Field(default_factory=Authorization)


def _cross_check(mapping: Mapping) -> list[tuple[tuple[str | int, ...], str]]:
    problems: list[tuple[tuple[str | int, ...], str]] = []
    first_by_key: dict[tuple[str, str], int] = {}
    for index, charger in enumerate(mapping.chargers):
        key = ("id", charger.id) if charger.id is not None else ("pattern", charger.pattern or "")
        if key in first_by_key:
            problems.append(
                (
                    ("chargers", index, key[0]),
                    f"{key[0]} {key[1]!r} is already listed at chargers[{first_by_key[key]}]",
                )
            )
        else:
            first_by_key[key] = index
    for list_name in ("whitelist", "blacklist"):
        seen: dict[str, int] = {}
        for index, entry in enumerate(getattr(mapping.authorization, list_name)):
            if entry.key in seen:
                problems.append(
                    (
                        ("authorization", list_name, index),
                        f"id tag {entry.id_tag!r} is already listed at {list_name}[{seen[entry.key]}]",
                    )
                )
            seen.setdefault(entry.key, index)
    return problems


def parse_mapping(document: YamlDocument) -> Mapping:
    """Validate a parsed YAML document as a mapping; raise `SourceError` naming every problem's line."""
    if not isinstance(document.data, dict):
        raise SourceError(
            [SourceIssue(document.file, 1, "", "the mapping file must be a YAML mapping (key: value)")]
        )
    try:
        mapping = Mapping.model_validate(document.data)
    except ValidationError as exc:
        issues = [document.issue(tuple(error["loc"]), _reason(error)) for error in exc.errors()]
        raise SourceError(sorted(issues, key=lambda issue: issue.line)) from None
    problems = _cross_check(mapping)
    if problems:
        raise SourceError([document.issue(location, reason) for location, reason in problems])
    return mapping


def _reason(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def load_mapping(path: Path) -> Mapping:
    """Read, parse and validate the mapping file at `path`."""
    return parse_mapping(load_yaml(path))
