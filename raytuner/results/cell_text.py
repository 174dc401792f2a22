"""Arrow columns as text, a whole column at a time: the cells of CSV and JSON-lines exports.

Arrow's own timestamp-to-text kernels format value by value through C++ streams and
locales, which made them most of the cost of a CSV or JSON-lines export. Timestamps here
are formatted with numpy integer arithmetic straight into a fixed-width byte buffer, with
the same text Arrow writes (``2026-01-01 00:00:00.500Z``); values Arrow would write
differently (years outside 1-9999, time zones other than ``UTC``) go through Arrow's kernels.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

_FRACTION_DIGITS = {"s": 0, "ms": 3, "us": 6, "ns": 9}
_NEEDS_ESCAPE = r'["\\\x00-\x1f]'
_WHOLE = r"^-?[0-9]+$"


def timestamp_text(column: pa.Array, separator: str = " ", zone: str = "Z") -> pa.Array:
    """``column`` (a timestamp array) as ``YYYY-MM-DD<separator>HH:MM:SS[.fff]<zone>`` strings.

    Fractional digits follow the unit (none for seconds, 3 for ms, 6 for us, 9 for ns), as in
    Arrow's cast to string; ``zone`` is written only for UTC columns (naive ones have none).
    Nulls stay null.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    tz = kind.tz
    if tz not in (None, "UTC") or len(column) * 40 >= 2**31:  # Arrow writes other zones' offsets (+0000, +0100)
        return _arrow_text(column, separator, zone)
    digits = _FRACTION_DIGITS[kind.unit]
    per_second = 10**digits
    ticks = pc.fill_null(column.cast(pa.int64()), 0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    days, in_day = np.divmod(ticks, 86_400 * per_second)
    year, month, day = _civil_from_days(days)
    if len(ticks) and (year.min() < 1 or year.max() > 9999):
        return _arrow_text(column, separator, zone)
    seconds, fraction = np.divmod(in_day, per_second)
    suffix = zone if tz is not None else ""
    layout: list[tuple[np.ndarray | str, int]] = [
        (year, 4), ("-", 0), (month, 2), ("-", 0), (day, 2), (separator, 0),
        (seconds // 3600, 2), (":", 0), (seconds // 60 % 60, 2), (":", 0), (seconds % 60, 2),
    ]  # fmt: skip
    if digits:
        layout += [(".", 0), (fraction, digits)]
    if suffix:
        layout.append((suffix, 0))
    width = sum(len(part) if isinstance(part, str) else size for part, size in layout)
    out = np.empty((len(ticks), width), dtype=np.uint8)
    at = 0
    for part, size in layout:
        if isinstance(part, str):
            encoded = part.encode()
            out[:, at : at + len(encoded)] = np.frombuffer(encoded, dtype=np.uint8)
            at += len(encoded)
            continue
        for place in range(size):
            out[:, at + size - 1 - place] = 48 + (part // 10**place) % 10
        at += size
    offsets = np.arange(0, width * (len(ticks) + 1), width, dtype=np.int32)
    validity = None
    if column.null_count:
        validity = pc.is_valid(column).buffers()[1]
    return pa.Array.from_buffers(
        pa.string(), len(ticks), [validity, pa.py_buffer(offsets), pa.py_buffer(out)], null_count=column.null_count
    )


def _civil_from_days(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Proleptic Gregorian (year, month, day) of days since 1970-01-01, vectorised.

    Howard Hinnant's ``civil_from_days`` (the algorithm behind C++20's ``year_month_day``).
    """
    import numpy as np

    shifted = days + 719_468  # from 0000-03-01, so leap days fall at the end of a year
    era = shifted // 146_097
    day_of_era = shifted - era * 146_097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_from_march = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * month_from_march + 2) // 5 + 1
    month = np.where(month_from_march < 10, month_from_march + 3, month_from_march - 9)
    year = year_of_era + era * 400 + (month <= 2)
    return year, month, day


def _arrow_text(column: pa.Array, separator: str, zone: str) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    if separator == " " and zone == "Z":
        return pc.cast(column, pa.string())
    return pc.strftime(column, f"%Y-%m-%d{separator}%H:%M:%S{'%z' if column.type.tz else ''}")


def csv_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with its timestamp columns already as text (what Arrow's CSV writer would write)."""
    import pyarrow as pa

    if not any(pa.types.is_timestamp(field.type) for field in batch.schema):
        return batch
    return pa.RecordBatch.from_arrays(
        [timestamp_text(c) if pa.types.is_timestamp(c.type) else c for c in batch.columns], names=batch.schema.names
    )


def csv_schema(schema: pa.Schema) -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [field.with_type(pa.string()) if pa.types.is_timestamp(field.type) else field for field in schema],
        metadata=schema.metadata,
    )


def json_cells(column: pa.Array) -> pa.Array:
    """Each value of ``column`` as JSON text (``null`` for nulls, NaN and infinities), as strings.

    Timestamps are ISO 8601 text with the offset (``2026-01-01T00:00:00.500+0000``); floats
    keep a decimal point or an exponent (``2.0``, ``1e+300``), as JSON floats.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_timestamp(kind):
        column, kind = timestamp_text(column, "T", "+0000"), pa.string()
    if pa.types.is_floating(kind):
        text = pc.cast(column, pa.string())
        if pc.any(pc.equal(pc.floor(column), column)).as_py():
            # Arrow writes 2.0 as "2" (but 1e15 as "1e+15"): keep it a float for JSON readers that type columns
            whole = pc.match_substring_regex(text, _WHOLE)
            text = pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)
        column = pc.if_else(pc.is_finite(column), text, "null")
    elif pa.types.is_integer(kind):
        column = pc.cast(column, pa.string())
    elif pa.types.is_boolean(kind):
        column = pc.if_else(column, "true", "false")
    elif pa.types.is_string(kind) and not pc.any(pc.match_substring_regex(column, _NEEDS_ESCAPE)).as_py():
        column = pc.binary_join_element_wise('"', column, '"', "")
    else:
        column = pa.array([None if v is None else _json(v) for v in column.to_pylist()], pa.string())
    return pc.fill_null(column, "null")


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)
