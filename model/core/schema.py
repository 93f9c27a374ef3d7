"""The one source of truth for the feature schema.

Training, the loader, the scoring script, the endpoint client and the dashboard
form all import from here: column names, allowed category values (in display
order), human labels, defaults, the target definition and the risk bands.

Values are the CDC "COVID-19 Case Surveillance Public Use Data" spellings.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = "cdc-case-surveillance/2021"

# Values CDC uses for "we do not know". They are legitimate *inputs* (a clerk
# often does not know), but never a legitimate *target*.
MISSING = "Missing"
UNKNOWN = "Unknown"
NA = "NA"

YES_NO_VALUES = ("Yes", "No", UNKNOWN, MISSING)


@dataclass(frozen=True)
class Feature:
    """One categorical column: its CDC name, allowed values and how people see it."""

    name: str
    label: str
    help: str
    values: tuple[str, ...]
    default: str
    # False for columns kept only to report metrics per subgroup.
    model_input: bool = True
    # Optional prettier labels for values (value -> label); missing keys show the value.
    value_labels: tuple[tuple[str, str], ...] = ()

    def label_of(self, value: str) -> str:
        return dict(self.value_labels).get(value, value)

    def __post_init__(self) -> None:
        if self.default not in self.values:
            raise ValueError(f"default {self.default!r} of {self.name} is not an allowed value")


AGE_GROUPS = (
    "0 - 9 Years",
    "10 - 19 Years",
    "20 - 29 Years",
    "30 - 39 Years",
    "40 - 49 Years",
    "50 - 59 Years",
    "60 - 69 Years",
    "70 - 79 Years",
    "80+ Years",
)

RACE_ETHNICITY_GROUPS = (
    "American Indian/Alaska Native, Non-Hispanic",
    "Asian, Non-Hispanic",
    "Black, Non-Hispanic",
    "Hispanic/Latino",
    "Multiple/Other, Non-Hispanic",
    "Native Hawaiian/Other Pacific Islander, Non-Hispanic",
    "White, Non-Hispanic",
)

FEATURES: tuple[Feature, ...] = (
    Feature(
        name="age_group",
        label="Age group",
        help="Patient's age band at the time of the case.",
        # "Unknown" appears in 2020 releases only; later ones say "Missing" or "NA".
        values=(*AGE_GROUPS, UNKNOWN, MISSING, NA),
        default="40 - 49 Years",
    ),
    Feature(
        name="sex",
        label="Sex",
        help="Sex as recorded on the case report.",
        values=("Female", "Male", "Other", UNKNOWN, MISSING, NA),
        default="Female",
    ),
    Feature(
        name="current_status",
        label="Case status",
        help="Laboratory-confirmed, or probable by clinical/epidemiological criteria.",
        values=("Laboratory-confirmed case", "Probable Case"),
        default="Laboratory-confirmed case",
    ),
    Feature(
        name="medcond_yn",
        label="Pre-existing medical condition",
        help="Any underlying medical condition or risk behaviour reported. If nobody knows, choose "
        "'Not known': the risk is then that of all patients like this one whatever their answer. CDC's "
        "'Missing' and 'Unknown' are how jurisdictions reported (their fatality differs two-fold for reasons "
        "of reporting), so they are for scoring CDC files, not for a clerk's blank.",
        values=YES_NO_VALUES,
        default=MISSING,
    ),
    Feature(
        name="hosp_yn",
        label="Hospitalised",
        help="Was the patient admitted to hospital? Only with both hospital answers as Yes/No is the "
        "in-hospital model used; otherwise the intake model scores the patient.",
        values=YES_NO_VALUES,
        default=MISSING,
    ),
    Feature(
        name="icu_yn",
        label="Admitted to ICU",
        help="Was the patient admitted to an intensive care unit? Asked only once the patient is in hospital.",
        values=YES_NO_VALUES,
        default=MISSING,
    ),
    # Not one of the six core inputs (MODEL_INPUTS: what every full record carries, what batch files and
    # the monitor need), but an OPTIONAL input of the race-aware intake model (INTAKE_RACE_MODEL): given, it
    # is used (the race-blind model under-predicted minority patients by 40-130%); omitted ("Not given"), the
    # race-blind intake model scores. It stands for reporting, geography and access to care, not biology.
    Feature(
        name="race_ethnicity_combined",
        label="Race and ethnicity",
        help="Optional. Given, the race-aware intake model is used: in this data race/ethnicity stands for "
        "reporting, geography and access to care, not biology, and the race-blind model under-predicted "
        "minority patients. 'Not given' scores the race-blind model.",
        values=(*RACE_ETHNICITY_GROUPS, UNKNOWN, MISSING, NA),
        default=UNKNOWN,
        model_input=False,
    ),
)

FEATURES_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
ALL_COLUMNS: tuple[str, ...] = tuple(f.name for f in FEATURES)
MODEL_INPUTS: tuple[str, ...] = tuple(f.name for f in FEATURES if f.model_input)
SUBGROUP_COLUMNS: tuple[str, ...] = ("age_group", "sex", "race_ethnicity_combined")

# --- Prediction moments ---------------------------------------------------------
# Two models, one per moment a risk is asked for. At lab intake nobody knows yet
# whether the patient will be hospitalised; in the CDC file "Unknown"/"Missing"
# hospitalisation marks *sicker* patients (missing not at random), so an intake
# model must not see hosp_yn/icu_yn at all. Once both are known (Yes/No) the
# in-hospital model adds them.
INTAKE_MODEL = "intake"
IN_HOSPITAL_MODEL = "in_hospital"
HOSPITAL_FIELDS: tuple[str, ...] = ("hosp_yn", "icu_yn")
HOSPITAL_KNOWN_VALUES: tuple[str, ...] = ("Yes", "No")
# The race-aware intake model: the intake inputs plus race/ethnicity, used when a request gives it.
INTAKE_RACE_MODEL = "intake_race"
RACE = "race_ethnicity_combined"
MODEL_FEATURES: dict[str, tuple[str, ...]] = {
    INTAKE_MODEL: tuple(c for c in MODEL_INPUTS if c not in HOSPITAL_FIELDS),
    IN_HOSPITAL_MODEL: MODEL_INPUTS,
    INTAKE_RACE_MODEL: (*(c for c in MODEL_INPUTS if c not in HOSPITAL_FIELDS), RACE),
}
MODEL_LABELS: dict[str, str] = {
    INTAKE_MODEL: "intake model (age, sex, case status, conditions)",
    IN_HOSPITAL_MODEL: "in-hospital model (adds hospital and ICU admission)",
    INTAKE_RACE_MODEL: "race-aware intake model (adds race/ethnicity)",
}
# Every field a scoring request may carry. Only age is required: any other field the clerk does not know
# is left out ("not known") and the record is scored by the sub-model without it, i.e. the risk of all
# training patients like this one whatever their answer (model/serving/submodels.py). The CDC's own "Missing" and
# "Unknown" stay valid values for scoring CDC files, where they mean what the CDC meant.
REQUEST_FIELDS: tuple[str, ...] = (*MODEL_INPUTS, RACE)
REQUIRED_FIELDS: tuple[str, ...] = ("age_group",)
OPTIONAL_FIELDS: tuple[str, ...] = tuple(c for c in REQUEST_FIELDS if c not in REQUIRED_FIELDS)


def model_values(model: str, feature: str) -> tuple[str, ...]:
    """Values `feature` takes in `model`'s own table (hospital fields are Yes/No in the in-hospital model)."""
    if model == IN_HOSPITAL_MODEL and feature in HOSPITAL_FIELDS:
        return HOSPITAL_KNOWN_VALUES
    return FEATURES_BY_NAME[feature].values


def model_for(record: dict[str, str]) -> str:
    """Which model scores a record of canonical values: in-hospital only when both hospital answers are Yes/No;
    otherwise the race-aware intake model when race/ethnicity is given, else the race-blind intake model."""
    if all(record.get(f) in HOSPITAL_KNOWN_VALUES for f in HOSPITAL_FIELDS):
        return IN_HOSPITAL_MODEL
    return INTAKE_RACE_MODEL if record.get(RACE) is not None else INTAKE_MODEL


# An answer with fewer training (+ validation) patients than this behind it is marked extrapolated:
# its risk comes from the model's structure, not from patients like it.
EXTRAPOLATED_BELOW_PATIENTS = 20

# Age groups along which risk may only rise (children under 10 are excluded: infants can be
# at higher risk than teenagers, and the data show it).
MONOTONE_AGE_GROUPS: tuple[str, ...] = AGE_GROUPS[1:]

# --- Intake population ----------------------------------------------------------
# Probable cases with neither a symptom-onset nor a positive-specimen date were, in the
# first-wave file, found through death certificates (92% "died"): they were never patients
# at a lab intake. They are excluded from training and evaluation (and counted).
INTAKE_EXCLUSION = "probable case with no onset and no positive-specimen date (death-certificate ascertainment)"

# --- Target -----------------------------------------------------------------
# The seed notebook label-encoded death_yn alphabetically (Missing=0, No=1,
# Unknown=2, Yes=3) and kept codes 0 and 1: it learned "Missing vs No", not
# death. The target is death_yn == "Yes" against death_yn == "No"; every other
# value is an unknown outcome and is excluded from training (and counted).
TARGET = "death_yn"
TARGET_POSITIVE = "Yes"
TARGET_NEGATIVE = "No"
TARGET_VALUES = ("Yes", "No", UNKNOWN, MISSING, NA)
TARGET_UNKNOWN_VALUES = (UNKNOWN, MISSING, NA)

# --- Source-file column names -------------------------------------------------
# Older CDC releases (2020) named the race column differently and had no
# cdc_case_earliest_dt; the loader maps them onto the current names.
COLUMN_ALIASES: dict[str, str] = {
    "Race and ethnicity (combined)": "race_ethnicity_combined",
}
DATE_COLUMNS = ("cdc_case_earliest_dt", "cdc_report_dt", "pos_spec_dt", "onset_dt")
CURRENT_SCHEMA_COLUMNS = (
    "cdc_case_earliest_dt",
    "cdc_report_dt",
    "pos_spec_dt",
    "onset_dt",
    "current_status",
    "sex",
    "age_group",
    "race_ethnicity_combined",
    "hosp_yn",
    "icu_yn",
    "death_yn",
    "medcond_yn",
)

# --- Risk bands ----------------------------------------------------------------
# Bands on the calibrated probability of death, for people reading a single score.
# (upper bound exclusive, name); the last band is open-ended.
RISK_BANDS: tuple[tuple[float, str], ...] = (
    (0.01, "low"),
    (0.05, "moderate"),
    (0.20, "high"),
    (1.01, "very high"),
)


# The operating threshold a page, a batch run or a projection starts from: the lower edge of the
# "high" band, so "flagged" means "high or very high".
DEFAULT_THRESHOLD: float = RISK_BANDS[1][0]


def default_record() -> dict[str, str]:
    """An intake patient made of the form's defaults (examples, health checks, smoke tests)."""
    return {name: FEATURES_BY_NAME[name].default for name in MODEL_FEATURES[INTAKE_MODEL]}


def risk_band(probability: float) -> str:
    """Name of the risk band a calibrated probability falls in."""
    for upper, name in RISK_BANDS:
        if probability < upper:
            return name
    return RISK_BANDS[-1][1]


def canonical_value(feature: str, raw: str | None) -> str | None:
    """Map a raw cell onto its canonical spelling, or None if not recognised.

    Harmless differences are forgiven: surrounding blanks, letter case
    ("Probable case" vs "Probable Case"), and an empty cell, which CDC
    documents as missing.
    """
    values = TARGET_VALUES if feature == TARGET else FEATURES_BY_NAME[feature].values
    if raw is None:
        return MISSING if MISSING in values else None
    text = " ".join(str(raw).split())
    if text == "":
        return MISSING if MISSING in values else None
    folded = text.casefold()
    for value in values:
        if value.casefold() == folded:
            return value
    return None


# canonical_code's memo: only *recognised* spellings of bounded length are kept, so values
# that fail validation (an endpoint client can send millions of distinct ones, each up to the
# body limit) never stay in memory. Every schema value is far shorter than the bound.
CODE_CACHE_MAX_CHARS = 64
CODE_CACHE_MAX_ENTRIES = 65_536
_CODE_CACHE: dict[tuple[str, str | None], int] = {}


def canonical_code(feature: str, raw: str | None) -> int:
    """Position of `raw`'s canonical value in the feature's values, or -1 if not recognised.

    Memoised for recognised spellings up to CODE_CACHE_MAX_CHARS characters: files repeat
    a handful of distinct spellings millions of times, and readers map each distinct
    spelling once. Unrecognised or long values are recomputed each time and never kept.
    """
    key = (feature, raw)
    code = _CODE_CACHE.get(key)
    if code is not None:
        return code
    values = TARGET_VALUES if feature == TARGET else FEATURES_BY_NAME[feature].values
    canonical = canonical_value(feature, raw)
    code = -1 if canonical is None else values.index(canonical)
    if code >= 0 and (raw is None or len(raw) <= CODE_CACHE_MAX_CHARS) and len(_CODE_CACHE) < CODE_CACHE_MAX_ENTRIES:
        _CODE_CACHE[key] = code
    return code


def combination_count() -> int:
    """Number of distinct model-input combinations (the finite feature space)."""
    n = 1
    for name in MODEL_INPUTS:
        n *= len(FEATURES_BY_NAME[name].values)
    return n


# --- Request header --------------------------------------------------------------------
# What kind of traffic a scoring request is, so the monitor judges patients, not the tools' own calls:
# "live" (the default: a patient typed in), "batch" (a file scored through the endpoint: collected, marked
# batch) or "probe" (health checks, smoke tests, what-if variants: scored, never collected).
TRAFFIC_HEADER = "x-risk-traffic"
LIVE, BATCH, PROBE = "live", "batch", "probe"
TRAFFIC_KINDS: tuple[str, ...] = (LIVE, BATCH, PROBE)
