"""The code lists and table shapes of the data contract (v2), as plain Python.

Nothing here imports polars, so the CLI can build its help text cheaply.
Everything that reads, validates or derives data takes its code lists from here.
"""

from __future__ import annotations

from dataclasses import dataclass

OPIATES = ("heroin", "methadone", "buprenorphine", "other_opiate")
CRACK = "crack"
OTHER_DRUGS = (
    "cocaine",
    "cannabis",
    "amphetamine",
    "benzodiazepine",
    "ecstasy",
    "ketamine",
    "nps",
    "other_drug",
)
ALCOHOL = "alcohol"
SUBSTANCES = (*OPIATES, CRACK, *OTHER_DRUGS, ALCOHOL)

SUCCESSFUL_DISCHARGES = (
    "completed_drug_free",
    "completed_alcohol_free",
    "completed_occasional_user",
)
DIED = "client_died"
OTHER_DISCHARGES = (
    "transferred_community",
    "transferred_custody",
    "dropped_out",
    "withdrawn_by_provider",
    "declined_onward_referral",
    "other",
)
DISCHARGE_REASONS = (*SUCCESSFUL_DISCHARGES, DIED, *OTHER_DISCHARGES)

SEXES = ("M", "F", "X", "U")

# -- v2 (§9): TOP interviews and the hepatitis C fields -------------------------------------------
HCV_RESULTS = ("positive", "negative")
STAGES = ("start", "review", "exit")
HOUSING = ("none", "at_risk", "acute")
# substance code -> the TOP column of days used in the last 28 (other substances have none)
TOP_DAYS = {**{s: "days_opiates" for s in OPIATES}, "crack": "days_crack", "cocaine": "days_cocaine",
            "amphetamine": "days_amphetamine", "cannabis": "days_cannabis", "alcohol": "days_alcohol"}
DAYS_COLUMNS = ("days_opiates", "days_crack", "days_cocaine", "days_amphetamine", "days_cannabis", "days_alcohol")
WORK_COLUMNS = ("paid_work_days", "volunteer_days", "education_days")
EXCLUSIONS = ("transferred_prison", "deported", "died", "hospital")
PREVALENCE_CATEGORIES = ("ocu", "opiate_only", "crack_only", "opiate_and_crack", "alcohol")

SUBSTANCE_GROUPS = ("opiate", "non_opiate_only", "non_opiate_and_alcohol", "alcohol_only")
OCU_GROUPS = ("opiate_and_crack", "opiate_only", "crack_only")

# Age bands of the mortality ratio's indirect standardisation (contract §4).
AGE_BANDS = ((18, 29, "18-29"), (30, 39, "30-39"), (40, 49, "40-49"), (50, 64, "50-64"), (65, 120, "65+"))

ENGLAND_CODE = "E92000001"
ENGLAND_NAME = "England"
LA_CODE_PATTERN = r"^E(06|08|09|10)[0-9]{6}$"
ADULT_AGE = 18


@dataclass(frozen=True)
class Column:
    """One column of an input table."""

    name: str
    kind: str  # "id" | "string" | "la" | "date" | "age" | "number" | "year" | "code"
    nullable: bool = False
    required: bool = True  # must be present in the file's header
    codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    name: str  # file stem: episodes / prison_releases / prevalence
    columns: tuple[Column, ...]
    id_column: str | None = None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


EPISODES = Table(
    "episodes",
    (
        Column("episode_id", "id"),
        Column("client_id", "id"),
        Column("la_code", "la"),
        Column("sex", "code", codes=SEXES),
        Column("age", "age"),
        Column("substance_1", "code", codes=SUBSTANCES),
        Column("substance_2", "code", nullable=True, required=False, codes=SUBSTANCES),
        Column("substance_3", "code", nullable=True, required=False, codes=SUBSTANCES),
        Column("referral_date", "date", nullable=True, required=False),
        Column("triage_date", "date"),
        Column("discharge_date", "date", nullable=True),
        Column("discharge_reason", "code", nullable=True, codes=DISCHARGE_REASONS),
        # hepatitis C (§9): optional; an extract without them has no hepatitis C cascade
        Column("hcv_offered", "date", nullable=True, required=False),
        Column("hcv_tested", "date", nullable=True, required=False),
        Column("hcv_result", "code", nullable=True, required=False, codes=HCV_RESULTS),
        Column("hcv_treatment_started", "date", nullable=True, required=False),
    ),
    id_column="episode_id",
)
HCV_COLUMNS = ("hcv_offered", "hcv_tested", "hcv_result", "hcv_treatment_started")

RELEASES = Table(
    "prison_releases",
    (
        Column("release_id", "id"),
        Column("client_id", "id"),
        Column("la_code", "la"),
        Column("sex", "code", codes=SEXES),
        Column("age", "age"),
        Column("release_date", "date"),
        Column("exclusion", "code", nullable=True, codes=EXCLUSIONS),
    ),
    id_column="release_id",
)

PREVALENCE = Table(
    "prevalence",
    (
        Column("la_code", "la"),
        Column("category", "code", codes=PREVALENCE_CATEGORIES),
        Column("year", "year"),
        Column("estimate", "number"),
        Column("lower", "number", nullable=True, required=False),
        Column("upper", "number", nullable=True, required=False),
    ),
)

REVIEWS = Table(
    "reviews",
    (
        Column("review_id", "id"),
        Column("client_id", "id"),
        Column("episode_id", "id"),
        Column("review_date", "date"),
        Column("stage", "code", codes=STAGES),
        *(Column(name, "days", nullable=True, required=False) for name in DAYS_COLUMNS),
        Column("housing", "code", nullable=True, required=False, codes=HOUSING),
        *(Column(name, "days", nullable=True, required=False) for name in WORK_COLUMNS),
    ),
    id_column="review_id",
)

TABLES = {t.name: t for t in (EPISODES, RELEASES, PREVALENCE, REVIEWS)}

# Rule names used in error reports (file, row, column, value, rule).
RULE_MISSING_COLUMN = "missing required column"
RULE_NULL = "value required"
RULE_DATE = "not an ISO date (YYYY-MM-DD)"
RULE_DATE_FORMAT = "not a date in format {}"  # with a mapping's date_format
RULE_CODE = "unknown code"
RULE_LA = "malformed la_code (E06/E08/E09/E10 + 6 digits)"
RULE_DUPLICATE = "repeated id"
RULE_DISCHARGE_ORDER = "discharge_date before triage_date"
RULE_REASON_WITHOUT_DATE = "discharge_reason without discharge_date"
RULE_DATE_WITHOUT_REASON = "discharge_date without discharge_reason"
RULE_AGE = "age not a whole number from 0 to 120"
RULE_OCCASIONAL = "completed_occasional_user on an episode citing an opiate or crack"
RULE_NUMBER = "not a non-negative number"
RULE_YEAR = "not a year like 2019-20"
RULE_DUPLICATE_ESTIMATE = "repeated la_code, category and year"
RULE_DAYS = "not a whole number of days from 0 to 28"
RULE_TEST_WITHOUT_OFFER = "hcv_tested without hcv_offered"
RULE_RESULT_WITHOUT_TEST = "hcv_result without hcv_tested"
RULE_TREATMENT_WITHOUT_POSITIVE = "hcv_treatment_started without a positive hcv_result"
RULE_TEST_BEFORE_OFFER = "hcv_tested before hcv_offered"
RULE_TREATMENT_BEFORE_TEST = "hcv_treatment_started before hcv_tested"
RULE_NO_EPISODE = "episode_id not a valid episode (no such episode)"
RULE_REJECTED_EPISODE = "episode_id not a valid episode (its episode row was rejected)"
RULE_OTHER_CLIENT = "client_id differs from the episode's"
RULE_BEFORE_TRIAGE = "review_date before the episode's triage_date"

METRICS = ("in_treatment", "unmet_need", "continuity", "deaths", "mortality_ratio", "completions",
           "progress", "housing", "employment", "hepatitis_c")

# Polarity: which direction of value is better (None for plain counts).
POLARITY = {
    "in_treatment": None,
    "unmet_need": "low",
    "continuity": "high",
    "deaths": "low",
    "mortality_ratio": "low",
    "completions": "high",
    "progress": "high",
    "employment": "high",
    # per category where a metric's categories differ ("none": no polarity, compared as higher / lower)
    "housing": {"acute": "low", "no_problem": "high"},
    "hepatitis_c": {"offered": "high", "tested": "high", "positive": "none", "treatment_started": "high"},
}


def polarity(metric: str, category: str) -> str | None:
    """`high`, `low` or `none` (compared, no direction better) for a row; None for a count (not compared)."""
    given = POLARITY[metric]
    return given.get(category) if isinstance(given, dict) else given
PROGRESS_CATEGORIES = ("all", *SUBSTANCE_GROUPS)
HOUSING_CATEGORIES = ("acute", "no_problem")
EMPLOYMENT_CATEGORIES = ("paid_work", "voluntary_work", "education")
HCV_CATEGORIES = ("offered", "tested", "positive", "treatment_started")
REDUCTION_DAYS = 7  # this tool's default for "significantly reduced" (§9)

ROW_FIELDS = (
    "area_code",
    "area_name",
    "area_type",
    "region_code",
    "category",
    "numerator",
    "denominator",
    "value",
    "ci_lower",
    "ci_upper",
    "comparison",
    "suppressed",
)

CONTRACT_VERSION_KEY = "contract"
