"""One typed settings object.

Precedence, lowest first: defaults, then ``eventpipe.toml`` (or the file named by
``--config`` / ``EVENTPIPE_CONFIG``), then ``EVENTPIPE_*`` environment variables,
then CLI flags.
"""

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from eventpipe.errors import ConfigError
from eventpipe.fields import EVENT_FIELDS

DEFAULT_CONFIG_FILE = Path("eventpipe.toml")
_YEAR_MINUTES = 366 * 24 * 60
# Gold columns next to the per-type columns of events_by_minute: a type cannot be called so.
_RESERVED_COLUMNS = frozenset({"minute", "events_count"})
# A type's count column is its name plus "s"; these would collide with other columns.
_RESERVED_TYPES = frozenset({"event", "session", "user", "revenue"})
_DEFAULT_SYNONYMS = {
    "product_view": "view",
    "pageview": "view",
    "page_view": "view",
    "add_to_cart": "cart",
    "add-cart": "cart",
    "addtocart": "cart",
    "remove": "remove_from_cart",
    "remove-from-cart": "remove_from_cart",
    "buy": "purchase",
    "order": "purchase",
}


class UserCheck(BaseModel):
    """A check of the user's own, from ``[[quality.checks]]`` in eventpipe.toml."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """A name for reports, unique among the checks."""

    table: str
    """The view the check guards, e.g. ``silver_events``; it decides the layer the check runs after."""

    sql: str
    """A query over the warehouse's views that returns the offending rows (none when all is well)."""

    severity: Literal["warn", "fail"] = "fail"
    """``fail`` stops the run and makes the command exit non-zero; ``warn`` only reports."""

    description: str = ""
    """One line on what the check guards."""


class QualitySettings(BaseModel):
    """Thresholds of the built-in checks, and the user's own checks."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    freshness_hours: float = Field(default=24, gt=0)
    """Warn when the newest event is older than this, by the run's clock."""

    volume_min_ratio: float = Field(default=0.5, ge=0)
    """Warn when the newest day has fewer events than this times the trailing 7-day average."""

    volume_max_ratio: float = Field(default=2.0, gt=0)
    """Warn when the newest day has more events than this times the trailing 7-day average."""

    max_late_event_rate: float = Field(default=0.05, ge=0, le=1)
    """Warn about a file whose share of late events (older than the newest event before it) is above this."""

    max_quarantine_rate: float = Field(default=0.05, ge=0, le=1)
    """Warn about a file whose share of quarantined records is above this."""

    checks: list[UserCheck] = Field(default_factory=list)
    """The user's own checks."""


class Settings(BaseSettings):
    """Everything a run can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="EVENTPIPE_",
        extra="forbid",
        validate_default=True,
        allow_inf_nan=False,
    )

    warehouse: Path = Path("warehouse")
    """Folder holding the Delta tables (created on first use)."""

    sources: list[str] = Field(default_factory=list)
    """Files, folders or globs to ingest when ``--source`` is not given."""

    columns: dict[str, str] = Field(default_factory=dict)
    """Source column name -> pipeline field, e.g. ``{timestamp = "event_time"}``.

    Columns already named like a field need no entry.
    """

    session_timeout_minutes: float = Field(default=30, gt=0, le=_YEAR_MINUTES)
    """A user's gap longer than this starts a new session (exactly this long continues it)."""

    max_session_minutes: float | None = Field(default=None, ge=1 / 60, le=_YEAR_MINUTES)
    """Cut sessions into pieces this long (from the session's start); off by default."""

    event_types: list[str] = Field(default_factory=lambda: ["view", "cart", "remove_from_cart", "purchase"])
    """The canonical event types; anything else is quarantined in silver."""

    event_type_synonyms: dict[str, str] | None = None
    """Spelling (after trimming and lower-casing) -> canonical event type. Default: common
    spellings of the default types (``add_to_cart`` -> ``cart``, ...), those whose type is one of
    ``event_types``."""

    revenue_event_type: str | None = None
    """The event type whose price is revenue (revenue, orders, average order value, converted
    sessions). Default: ``purchase`` if it is one of ``event_types``, else the last funnel step."""

    future_tolerance_hours: float = Field(default=24, ge=0, le=10 * 366 * 24)
    """Events further than this ahead of the run's clock are quarantined."""

    funnel_steps: list[str] = Field(default_factory=lambda: ["view", "cart", "purchase"], min_length=2)
    """The ordered funnel of gold/funnel, as canonical event types."""

    rows_per_bucket: int = Field(default=4_000_000, ge=1)
    """A full silver build sorts the rows of a range of user ids at a time, ranges of about this
    many bronze rows, so that a sort fits in ``memory_limit``; it groups sessions from ranges of
    days of about a quarter as many events, and a full gold build finds the sessions' funnel
    steps for ranges of about this many sessions. A date-range rebuild whose range
    holds more bronze rows than this is done as a full build (the same tables; a full build
    streams in bounded memory, a range is held whole)."""

    memory_limit: str = "1GB"
    """Memory DuckDB may use before it spills to the warehouse's _tmp folder."""

    engine: Literal["duckdb", "spark"] = "duckdb"
    """What runs the transformations: DuckDB on this machine, or Apache Spark
    (``pip install 'eventpipe[spark]'``) on ``spark_master``."""

    spark_master: str = "local[*]"
    """The Spark master the ``spark`` engine connects to: ``local[*]``, ``spark://host:7077``, ``yarn``..."""

    spark: dict[str, str] = Field(default_factory=dict)
    """Spark configuration passed through as is (``[spark]`` in eventpipe.toml),
    e.g. ``{"spark.executor.memory" = "4g"}``."""

    read_chunk_bytes: int = Field(default=16 * 1024 * 1024, ge=64 * 1024, le=1024**3)
    """Bytes of raw text parsed per batch; bounds ingest memory."""

    max_record_bytes: int = Field(default=1024 * 1024, ge=1024, le=1024**3)
    """A longer record (line) is quarantined with its length and first bytes, never held whole."""

    quality: QualitySettings = Field(default_factory=QualitySettings)
    """Data-quality thresholds and the user's own checks (``[quality]`` in eventpipe.toml)."""

    @field_validator("columns")
    @classmethod
    def _columns_target_known_fields(cls, columns: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(columns.values()) - set(EVENT_FIELDS))
        if unknown:
            raise ValueError(
                f"maps onto unknown field(s) {', '.join(unknown)}; fields are: {', '.join(EVENT_FIELDS)}"
            )
        return columns

    @field_validator("memory_limit")
    @classmethod
    def _memory_is_an_amount(cls, limit: str) -> str:
        found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)\s*", limit, re.IGNORECASE)
        if not found or float(found[1]) <= 0:
            raise ValueError(f'{limit!r} is not an amount of memory; write e.g. "1GB" or "512MB"')
        return limit

    @field_validator("event_types")
    @classmethod
    def _event_types_are_names(cls, types: list[str]) -> list[str]:
        seen: dict[str, str] = {}
        for name in types:
            if not name.strip() or name != name.strip():
                raise ValueError(f"{name!r}: an event type is a non-empty name without surrounding spaces")
            if name.lower() in seen:
                raise ValueError(
                    f"{seen[name.lower()]!r} and {name!r} are the same type (types are matched in lower case)"
                )
            if name.lower() in _RESERVED_COLUMNS or name.lower() in _RESERVED_TYPES:
                raise ValueError(
                    f"{name!r} would name a column that gold has already; call the type something else"
                )
            seen[name.lower()] = name
        return types

    @field_validator("funnel_steps")
    @classmethod
    def _steps_are_distinct(cls, steps: list[str]) -> list[str]:
        repeated = sorted({s for s in steps if steps.count(s) > 1})
        if repeated:
            raise ValueError(f"step(s) {', '.join(repeated)} appear more than once; each step comes once")
        return steps

    @model_validator(mode="after")
    def _event_types_are_consistent(self) -> "Settings":
        canonical = set(self.event_types)
        stray = sorted(
            {t for t in (self.event_type_synonyms or {}).values() if t not in canonical}
            | {t for t in self.funnel_steps if t not in canonical}
            | ({self.revenue_event_type} - canonical if self.revenue_event_type else set())
        )
        if stray:
            raise ValueError(
                f"event type(s) {', '.join(stray)} used in event_type_synonyms, funnel_steps or "
                f"revenue_event_type are not in event_types ({', '.join(self.event_types)})"
            )
        return self

    @property
    def synonyms(self) -> dict[str, str]:
        """The synonyms in force: the setting, or the built-in spellings of the event types."""
        if self.event_type_synonyms is not None:
            return self.event_type_synonyms
        return {k: v for k, v in _DEFAULT_SYNONYMS.items() if v in self.event_types}

    @property
    def revenue_type(self) -> str:
        """The event type whose price is revenue (see ``revenue_event_type``)."""
        if self.revenue_event_type:
            return self.revenue_event_type
        return "purchase" if "purchase" in self.event_types else self.funnel_steps[-1]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: flags, then environment, then the settings file.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @classmethod
    def load(cls, config_file: Path | None = None, implicit_file: bool = True, **flags: Any) -> "Settings":
        """Build settings from every layer; ``flags`` that are None are not set.

        Without ``implicit_file``, ./eventpipe.toml is not read unless named (for a worker
        that runs in whatever folder it was started from).
        """
        path = _config_path(config_file, implicit_file)
        layered = type(cls.__name__, (cls,), {"model_config": {**cls.model_config, "toml_file": path}})
        try:
            return layered(**{k: v for k, v in flags.items() if v is not None})
        except ValidationError as error:
            raise ConfigError(_describe(error, path)) from None
        except SettingsError as error:  # an EVENTPIPE_* variable that is not the JSON it must be
            raise ConfigError(_describe_environment(error)) from None
        except (OSError, ValueError) as error:  # unreadable or malformed TOML
            raise ConfigError(f"cannot read settings file {path}: {error}") from None


def _config_path(config_file: Path | None, implicit_file: bool = True) -> Path | None:
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"settings file {config_file} does not exist")
        return config_file
    from_env = os.environ.get("EVENTPIPE_CONFIG")
    if from_env:
        return _config_path(Path(from_env))
    return DEFAULT_CONFIG_FILE if implicit_file and DEFAULT_CONFIG_FILE.is_file() else None


def _describe_environment(error: SettingsError) -> str:
    found = re.search(r'field "(\w+)"', str(error))
    name = f"EVENTPIPE_{found[1].upper()}" if found else "an EVENTPIPE_* variable"
    return (
        f"invalid settings: {name} is not valid JSON; a list or table is written as JSON, "
        f"e.g. {name}='[\"landing/\"]'"
    )


def _describe(error: ValidationError, path: Path | None) -> str:
    where = f" (settings file {path}, EVENTPIPE_* variables or flags)" if path else ""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg'].removeprefix('Value error, ')}"
        for e in error.errors()
    )
    return f"invalid settings{where}: {problems}"
