"""The patient form's questions and answers: what a clerk can choose, and the request it becomes.

Pure functions (no Streamlit), so the page and its tests share one definition.

Why "Not known" instead of the CDC's "Missing" and "Unknown": those two are how jurisdictions
reported, and their fatality differs two-fold for reasons of reporting; a clerk's blank is
neither. "Not known" leaves the field out of the request, and the endpoint scores the record
without it: the risk of all training patients like this one whatever their answer. Race and
ethnicity offers "Not given" (the default, the race-blind model) and the CDC groups, never
"Unknown", which in this data marks jurisdictions with lower recorded fatality.
"""

from __future__ import annotations

from model import schema

NOT_KNOWN = "Not known"
NOT_GIVEN = "Not given"
LEFT_OUT = (NOT_KNOWN, NOT_GIVEN)
_CDC_BLANKS = (schema.UNKNOWN, schema.MISSING, schema.NA)


def questions(in_hospital: bool) -> tuple[str, ...]:
    """The form's fields in display order: intake inputs, race/ethnicity, then the hospital answers if in hospital."""
    intake = (*schema.MODEL_FEATURES[schema.INTAKE_MODEL], schema.RACE)
    return (*intake, *schema.HOSPITAL_FIELDS) if in_hospital else intake


def options(name: str, in_hospital: bool) -> tuple[str, ...]:
    """What a clerk may choose for a field: its real answers, and "Not known"/"Not given" except for age."""
    if name == schema.RACE:
        return (NOT_GIVEN, *schema.RACE_ETHNICITY_GROUPS)
    if in_hospital and name in schema.HOSPITAL_FIELDS:
        return schema.HOSPITAL_KNOWN_VALUES  # the in-hospital model needs both answers
    answers = tuple(v for v in schema.FEATURES_BY_NAME[name].values if v not in _CDC_BLANKS)
    return answers if name in schema.REQUIRED_FIELDS else (NOT_KNOWN, *answers)


def default(name: str, in_hospital: bool) -> str:
    """The schema's default when the form offers it (e.g. sex Female), else the first option ("Not known")."""
    choices = options(name, in_hospital)
    preferred = schema.FEATURES_BY_NAME[name].default
    return preferred if preferred in choices else choices[0]


def label_of(name: str, value: str) -> str:
    return value if value in LEFT_OUT else schema.FEATURES_BY_NAME[name].label_of(value)


def request_record(answers: dict[str, str]) -> dict[str, str]:
    """The scoring request's record: every answered field; "Not known" and "Not given" are left out."""
    return {name: value for name, value in answers.items() if value not in LEFT_OUT}


def what_if_answers(answers: dict[str, str], in_hospital: bool) -> list[tuple[str, str, dict[str, str]]]:
    """(field, other choice, answers) for every other choice of each field the form offers."""
    return [
        (name, value, {**answers, name: value})
        for name in answers
        for value in options(name, in_hospital)
        if value != answers[name]
    ]
