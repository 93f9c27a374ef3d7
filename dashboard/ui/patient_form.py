"""The patient form's questions and answers: what a clerk can choose, and the request it becomes.

Pure functions (no Streamlit), so the page and its tests share one definition.

The form decides nothing for the clerk (issue 21). It opens empty: the age group, the one required
input, starts unanswered and the form cannot be scored until someone chooses it; every other intake
answer starts as "Not known". Once the patient is in hospital, the two hospital questions appear
unanswered and both must be answered (the in-hospital model needs Yes or No for each): a pre-filled
"ICU = Yes" once turned a 36% intake risk into 65% without anyone choosing it.

Why "Not known" instead of the CDC's "Missing" and "Unknown": those two are how jurisdictions
reported, and their fatality differs two-fold for reasons of reporting; a clerk's blank is
neither. "Not known" leaves the field out of the request, and the endpoint scores the record
without it: the risk of all training patients like this one whatever their answer. Race and
ethnicity offers "Not given" (the default, the race-blind model) and the CDC groups, never
"Unknown", which in this data marks jurisdictions with lower recorded fatality.
"""

from __future__ import annotations

from model.core import schema

NOT_KNOWN = "Not known"
NOT_GIVEN = "Not given"
LEFT_OUT = (NOT_KNOWN, NOT_GIVEN)
_CDC_BLANKS = (schema.UNKNOWN, schema.MISSING, schema.NA)
PER_ROW = 3  # questions side by side; the page draws them row by row, so Tab order is reading order

IN_HOSPITAL_LABEL = "The patient is already in hospital (hospital and ICU admission are known)"
IN_HOSPITAL_HELP = (
    "At intake leave this off: the intake model then scores age, sex, case status, conditions and, if given, "
    "race/ethnicity. Switched on, the two hospital questions appear unanswered and both must be answered; the "
    "in-hospital model then scores the patient. Hospitalisation that is not yet known is simply not asked: in "
    "CDC data 'Unknown' hospitalisation marks sicker patients and would about double the risk."
)


def intake_questions() -> tuple[str, ...]:
    """The intake fields in reading order: the intake model's inputs, then race/ethnicity (optional)."""
    return (*schema.MODEL_FEATURES[schema.INTAKE_MODEL], schema.RACE)


def questions(in_hospital: bool) -> tuple[str, ...]:
    """The form's fields in display order: intake inputs, race/ethnicity, then the hospital answers if in hospital."""
    intake = intake_questions()
    return (*intake, *schema.HOSPITAL_FIELDS) if in_hospital else intake


def rows(names: tuple[str, ...], per_row: int = PER_ROW) -> list[tuple[str, ...]]:
    """`names` cut into rows of `per_row`: drawn row by row, the keyboard visits them as people read them
    (columns filled one after the other made Tab go Age, Condition, Sex, ... instead)."""
    return [names[i : i + per_row] for i in range(0, len(names), per_row)]


def required(name: str, in_hospital: bool) -> bool:
    """Whether the field must be answered before scoring: age always, the hospital answers in hospital."""
    return name in schema.REQUIRED_FIELDS or (in_hospital and name in schema.HOSPITAL_FIELDS)


def options(name: str, in_hospital: bool) -> tuple[str, ...]:
    """What a clerk may choose for a field: its real answers, and "Not known"/"Not given" unless it is required."""
    if name == schema.RACE:
        return (NOT_GIVEN, *schema.RACE_ETHNICITY_GROUPS)
    if in_hospital and name in schema.HOSPITAL_FIELDS:
        return schema.HOSPITAL_KNOWN_VALUES  # the in-hospital model needs both answers
    answers = tuple(v for v in schema.FEATURES_BY_NAME[name].values if v not in _CDC_BLANKS)
    return answers if required(name, in_hospital) else (NOT_KNOWN, *answers)


def default(name: str, in_hospital: bool) -> str | None:
    """What a field shows before anyone answers: None (unanswered) when required, else "Not known"/"Not given".

    Never the schema's default record (40-49, Female): a form that opens filled in scores a patient nobody
    described."""
    return None if required(name, in_hospital) else options(name, in_hospital)[0]


def placeholder(name: str) -> str:
    """The text an unanswered required field shows (its label says which question it is)."""
    return "Choose an answer (required)"


def unanswered(answers: dict[str, str | None], in_hospital: bool) -> list[str]:
    """The required fields still without an answer, in form order (empty: the patient can be scored)."""
    return [name for name in questions(in_hospital) if required(name, in_hospital) and answers.get(name) is None]


def missing_text(missing: list[str]) -> str:
    """What the clerk still has to answer before Score is enabled, in words."""
    labels = [schema.FEATURES_BY_NAME[name].label for name in missing]
    return "To score, answer: " + (", ".join(labels[:-1]) + " and " + labels[-1] if len(labels) > 1 else labels[0])


def label_of(name: str, value: str | None) -> str:
    """A value as the form shows it (schema labels; "Not known"/"Not given" as they are)."""
    if value is None:
        return placeholder(name)
    return value if value in LEFT_OUT else schema.FEATURES_BY_NAME[name].label_of(value)


def request_record(answers: dict[str, str | None]) -> dict[str, str]:
    """The scoring request's record: every answered field; "Not known", "Not given" and unanswered are left out."""
    return {name: value for name, value in answers.items() if value is not None and value not in LEFT_OUT}


def what_if_answers(answers: dict[str, str], in_hospital: bool) -> list[tuple[str, str, dict[str, str]]]:
    """(field, other choice, answers) for every other choice of each field the form offers."""
    return [
        (name, value, {**answers, name: value})
        for name in answers
        for value in options(name, in_hospital)
        if value != answers[name]
    ]


def help_lines(in_hospital: bool) -> list[tuple[str, str]]:
    """(label, help) of every question on the form and of the hospital switch, in form order.

    Shown once, after the Score button, instead of a Help button before every field: Streamlit's `help=`
    tooltip is a Tab stop, which put nine extra stops between the clerk and the fields."""
    intake = [(schema.FEATURES_BY_NAME[n].label, schema.FEATURES_BY_NAME[n].help) for n in intake_questions()]
    hospital = [(schema.FEATURES_BY_NAME[n].label, schema.FEATURES_BY_NAME[n].help) for n in schema.HOSPITAL_FIELDS]
    return [*intake, ("Already in hospital", IN_HOSPITAL_HELP), *(hospital if in_hospital else [])]
