"""Per-line parsers of the three trace formats.

A row parser turns one decoded line into ``(timestamp_ms, input_length, output_length, weight)``
or raises :class:`~dynamo_plan.trace.source.BadLine` saying what is wrong (the reader adds file
and line number). CSV formats first parse their header line into a row parser.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache

from dynamo_plan.trace.model import TraceFormat
from dynamo_plan.trace.source import BadLine, snippet

__all__ = [
    "AZURE_COLUMNS",
    "RATE_COLUMNS",
    "Row",
    "RowParser",
    "csv_format_of_header",
    "csv_row_parser",
    "parse_mooncake",
    "parse_wallclock_ms",
]

Row = tuple[float, float, float, float]
RowParser = Callable[[str], Row]

AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
RATE_COLUMNS = ("timestamp", "requests")
RATE_OPTIONAL = ("isl", "osl")

_NAN = float("nan")

# --- Mooncake JSONL ---------------------------------------------------------------------------


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _json_number(obj: dict[str, object], key: str) -> float:
    if key not in obj:
        raise BadLine(f"missing field '{key}'")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadLine(f"'{key}' must be a number, got {_json_kind(value)} {snippet(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise BadLine(f"'{key}' must be finite, got {snippet(value)}")
    if number < 0:
        raise BadLine(f"'{key}' must be >= 0, got {snippet(value)}")
    return number


def parse_mooncake(text: str) -> Row:
    """One Mooncake record: ``{"timestamp": ms, "input_length": n, "output_length": n, ...}``.

    All three fields are required, must be finite numbers >= 0; ``hash_ids``, when present, must
    be an array. Other keys are ignored."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadLine(f"invalid JSON: {e.msg} (column {e.colno})") from None
    except (ValueError, RecursionError) as e:
        raise BadLine(f"invalid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise BadLine(f"expected a JSON object, found {_json_kind(obj)}")
    ts = _json_number(obj, "timestamp")
    isl = _json_number(obj, "input_length")
    osl = _json_number(obj, "output_length")
    hash_ids = obj.get("hash_ids")
    if hash_ids is not None and not isinstance(hash_ids, list):
        raise BadLine(f"'hash_ids' must be an array, got {_json_kind(hash_ids)}")
    return ts, isl, osl, 1.0


# --- timestamps -------------------------------------------------------------------------------

_WALLCLOCK = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:[.,]([0-9]{1,12}))?\s*(Z|[+-][0-9]{2}:?[0-9]{2})?",
    re.ASCII,
)


@lru_cache(maxsize=4096)
def _minute_epoch_s(year: str, month: str, day: str, hour: str, minute: str) -> float:
    """Unix time (s) of a UTC minute; cached, since consecutive records share their minute."""
    return datetime(int(year), int(month), int(day), int(hour), int(minute), tzinfo=UTC).timestamp()


def parse_wallclock_ms(text: str) -> float:
    """Milliseconds since the Unix epoch of ``YYYY-MM-DD HH:MM:SS[.fraction][Z|±HH:MM]``.

    Any number of fractional digits (the Azure trace has 7); no zone means UTC. Raises BadLine."""
    m = _WALLCLOCK.fullmatch(text.strip())
    if m is None:
        raise BadLine(f"bad timestamp {snippet(text)}: expected 'YYYY-MM-DD HH:MM:SS[.fraction]'")
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    try:
        if int(second) > 59:
            raise ValueError("second must be in 0..59")
        epoch_s = _minute_epoch_s(year, month, day, hour, minute) + int(second)
    except ValueError as e:
        raise BadLine(f"bad timestamp {snippet(text)}: {e}") from None
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        epoch_s -= sign * (int(zone[1:3]) * 3600 + int(zone[-2:]) * 60)
    ms = float("0." + fraction) * 1000.0 if fraction else 0.0
    return epoch_s * 1000.0 + ms


# --- CSV formats ------------------------------------------------------------------------------


def split_csv(text: str) -> list[str]:
    """Fields of one CSV line (quotes handled by the csv module when present)."""
    if '"' not in text:
        return text.split(",")
    try:
        rows = list(csv.reader([text]))
    except csv.Error as e:
        raise BadLine(f"malformed CSV ({e})") from None
    return rows[0] if rows else []


def _csv_number(fields: list[str], index: int, name: str) -> float:
    raw = fields[index].strip()
    if not raw:
        raise BadLine(f"'{name}' is empty")
    try:
        value = float(raw)
    except ValueError:
        raise BadLine(f"'{name}' must be a number, got {snippet(raw)}") from None
    if not math.isfinite(value):
        raise BadLine(f"'{name}' must be finite, got {snippet(raw)}")
    if value < 0:
        raise BadLine(f"'{name}' must be >= 0, got {snippet(raw)}")
    return value


def _header_columns(text: str) -> dict[str, int]:
    try:
        names = split_csv(text)
    except BadLine:
        return {}
    return {name.strip().lower(): i for i, name in enumerate(names)}


def csv_format_of_header(text: str) -> TraceFormat | None:
    """``azure`` or ``rate`` when ``text`` is such a CSV header (names case-insensitive)."""
    columns = _header_columns(text)
    if all(c.lower() in columns for c in AZURE_COLUMNS):
        return "azure"
    if all(c in columns for c in RATE_COLUMNS):
        return "rate"
    return None


def _expected_header(fmt: TraceFormat) -> str:
    if fmt == "azure":
        return ", ".join(AZURE_COLUMNS)
    return ", ".join(RATE_COLUMNS) + " [, isl, osl]"


def csv_row_parser(fmt: TraceFormat, header: str) -> RowParser:
    """The row parser of a CSV ``header`` line for ``fmt`` (``azure`` or ``rate``).

    Raises BadLine when the header lacks a required column (extra columns are ignored)."""
    columns = _header_columns(header)
    required = AZURE_COLUMNS if fmt == "azure" else RATE_COLUMNS
    missing = [c for c in required if c.lower() not in columns]
    if missing:
        raise BadLine(
            f"expected a CSV header with columns {_expected_header(fmt)} ({fmt}), "
            f"found {snippet(header)}"
        )
    width = len(split_csv(header))
    if fmt == "azure":
        return _azure_parser(columns, width)
    return _rate_parser(columns, width)


def _check_width(fields: list[str], width: int) -> None:
    if len(fields) != width:
        raise BadLine(f"expected {width} comma-separated fields, found {len(fields)}")


def _azure_parser(columns: dict[str, int], width: int) -> RowParser:
    i_ts, i_in, i_out = (columns[c.lower()] for c in AZURE_COLUMNS)

    def parse(text: str) -> Row:
        fields = split_csv(text)
        _check_width(fields, width)
        ts = parse_wallclock_ms(fields[i_ts])
        isl = _csv_number(fields, i_in, "ContextTokens")
        osl = _csv_number(fields, i_out, "GeneratedTokens")
        return ts, isl, osl, 1.0

    return parse


def _rate_timestamp_ms(raw: str) -> float:
    """Seconds (a number, e.g. Unix time as Prometheus writes it) or a wall-clock string."""
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        return parse_wallclock_ms(raw)
    if not math.isfinite(seconds):
        raise BadLine(f"'timestamp' must be finite, got {snippet(raw)}")
    return seconds * 1000.0


def _rate_parser(columns: dict[str, int], width: int) -> RowParser:
    i_ts, i_req = columns["timestamp"], columns["requests"]
    i_isl, i_osl = columns.get("isl"), columns.get("osl")

    def mean_length(fields: list[str], index: int | None, name: str, requests: float) -> float:
        if index is None:
            return _NAN
        raw = fields[index].strip()
        if requests == 0 and (not raw or raw.lower() == "nan"):
            return _NAN
        if not raw:
            raise BadLine(f"'{name}' is empty but requests > 0")
        return _csv_number(fields, index, name)

    def parse(text: str) -> Row:
        fields = split_csv(text)
        _check_width(fields, width)
        if not fields[i_ts].strip():
            raise BadLine("'timestamp' is empty")
        ts = _rate_timestamp_ms(fields[i_ts])
        requests = _csv_number(fields, i_req, "requests")
        isl = mean_length(fields, i_isl, "isl", requests)
        osl = mean_length(fields, i_osl, "osl", requests)
        return ts, isl, osl, requests

    return parse
