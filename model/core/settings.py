"""Settings read with pydantic-settings, and the one way their problems are worded.

Each reader of settings (the endpoint client, data collection, the scoring script, the Azure
deployment tooling) declares them as a pydantic-settings model: the environment variable or file
key, the type, the default and what is allowed, in one place. `read` fills such a model from an
environment mapping first, then from each table it is given (a secrets section, a file, flags) in
turn, then the defaults; a blank value ("" or None) counts as unset, as an empty environment
variable does. Callers pass the environment they mean (`os.environ`, or a test's dict).

A bad value raises `SettingsError`, one sentence per problem: the setting as the user wrote it,
the value given (never a secret's) and what is allowed, e.g.
`RISK_DATA_COLLECTION_FILE_MB='lots' is not a whole number; allowed: MB per file, a whole
number >= 1 (unset: 50)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource, InitSettingsSource, PydanticBaseSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

HIDDEN = "(hidden)"
# What pydantic's error types mean for a setting, as the end of "NAME='value' ...".
_WHAT = {
    "float_parsing": "is not a number",
    "float_type": "is not a number",
    "int_parsing": "is not a whole number",
    "int_from_float": "is not a whole number",
    "int_type": "is not a whole number",
    "bool_parsing": "is not true or false",
    "bool_type": "is not true or false",
    "string_type": "is not text",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be below {lt}",
    "less_than_equal": "must be at most {le}",
    "tuple_type": "is not a list",
}


class SettingsError(ValueError):
    """Settings that cannot be used; `problems` holds one sentence per bad setting."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class _EnvironSource(EnvSettingsSource):
    """pydantic-settings' environment source over the mapping a caller passes instead of `os.environ`."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


def read(
    settings_cls: type[SettingsT],
    *tables: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    names: Mapping[str, str] | None = None,
) -> SettingsT:
    """`settings_cls` from `environ` (when given), then each of `tables` in order, then its defaults.

    Raises SettingsError naming each bad setting by `names` (field -> what the user wrote), else by field.
    """
    sources: list[PydanticBaseSettingsSource] = []
    if environ is not None:
        sources.append(_EnvironSource(settings_cls, environ))
    sources += [InitSettingsSource(settings_cls, _set_values(table)) for table in tables]
    try:
        return settings_cls(_build_sources=(tuple(sources), {}))
    except ValidationError as exc:
        raise SettingsError(problems(exc, settings_cls, names)) from None


def _set_values(table: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in table.items() if value is not None and value != ""}


def problems(error: ValidationError, model: type[BaseModel], names: Mapping[str, str] | None = None) -> list[str]:
    """One sentence per error of `model`'s validation: setting, value given (hidden if secret), what is allowed.

    A validator's own ValueError text is kept: as the end of the sentence for a field ("is not an
    http(s) URL; ..."), whole for the model (a rule between settings).
    """
    return [_problem(detail, model, names or {}) for detail in error.errors()]


def _problem(detail: ErrorDetails, model: type[BaseModel], names: Mapping[str, str]) -> str:
    field = str(detail["loc"][0]) if detail["loc"] else ""
    info = _field_info(model, field)
    if info is None and detail["type"] == "value_error":
        return str(detail.get("ctx", {}).get("error", detail["msg"]))
    name = names.get(field, field)
    if detail["type"] == "missing":
        return f"missing {name}"
    if detail["type"] == "extra_forbidden":
        return f"{name} is not a setting; allowed: {', '.join(model.model_fields)}"
    value = HIDDEN if info is not None and _is_secret(info.annotation) else repr(detail["input"])
    allowed = f"; allowed: {info.description}" if info is not None and info.description else ""
    return f"{name}={value} {_what(detail, info)}{allowed}"


def _field_info(model: type[BaseModel], key: str) -> FieldInfo | None:
    """The field an error names: by its name, or by the environment variable it is read from (its alias)."""
    if key in model.model_fields:
        return model.model_fields[key]
    return next((info for info in model.model_fields.values() if info.validation_alias == key), None)


def _what(detail: ErrorDetails, info: FieldInfo | None) -> str:
    if detail["type"] == "value_error":
        return str(detail.get("ctx", {}).get("error", detail["msg"]))
    if detail["type"] == "literal_error" and info is not None:
        return "is not one of " + ", ".join(_literal_values(info.annotation))
    template = _WHAT.get(detail["type"])
    return template.format(**detail.get("ctx", {})) if template else f"is not valid ({detail['msg']})"


def _literal_values(annotation: Any) -> list[str]:
    """The allowed values of a Literal, also inside `Literal[...] | None`."""
    if get_origin(annotation) is Literal:
        return [str(value) for value in get_args(annotation)]
    return [value for arg in get_args(annotation) for value in _literal_values(arg)]


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or any(_is_secret(arg) for arg in get_args(annotation))
