"""Shared reading machinery for feed parsers: blocks of whole lines, encoding detection, and a
columnar CSV reader that quarantines malformed records instead of failing the file.

Everything here works on blocks of many thousand lines at once (Polars string kernels); a Python
loop touches only the rows that are already known to be broken.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import polars as pl

from commonwatch.errors import Invalid
from commonwatch.feeds.base import BATCH_ROWS, LINE, BadRecord, ParsedBatch, Source
from commonwatch.i18n import _
from commonwatch.textio import detect_encoding

#: Bytes read at a time; a block always ends at a line break (a longer line is read whole).
BLOCK_BYTES = 8 * 1024 * 1024
#: The raw form kept for a quarantined record is cut to this many characters.
RAW_KEEP = 4096
_WIDE = ("utf-16", "utf-32")


def batch_rows_setting() -> int:
    """Rows per batch: ``COMMONWATCH_BATCH_ROWS`` if set (operators tune memory with it), else
    the parser contract's default."""
    import os

    value = os.environ.get("COMMONWATCH_BATCH_ROWS", "")
    return int(value) if value.isdigit() and int(value) > 0 else BATCH_ROWS
#: A field, with its quotes, as CSV writes it: used to count separators outside quotes.
_QUOTED = r'"(?:[^"]|"")*"'


@dataclass
class TextBlock:
    """Whole lines of a document, decoded; ``first_line`` is the 1-based number of the first one."""

    first_line: int
    lines: pl.Series  # pl.String, one element per line, without line breaks
    encoding: str


@dataclass
class ReadState:
    encoding: str = ""
    notes: list[str] = field(default_factory=list)


def _blocks(stream: BinaryIO, block_bytes: int) -> Iterator[bytes]:
    tail = b""
    while True:
        chunk = stream.read(block_bytes)
        if not chunk:
            if tail:
                yield tail
            return
        data = tail + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            tail = data
            continue
        yield data[: cut + 1]
        tail = data[cut + 1:]


def iter_text_blocks(stream: BinaryIO, state: ReadState, block_bytes: int = BLOCK_BYTES) -> Iterator[TextBlock]:
    """Decode a byte stream into blocks of lines. UTF-8 (with or without BOM), UTF-16/32 and
    GBK/GB18030 are detected from the first block; a later block that is not valid in that
    encoding is detected again (and the change noted) rather than mangled."""
    head = stream.read(min(block_bytes, 1_000_000))
    if not head:
        return
    try:
        encoding = detect_encoding(head)
    except Invalid:
        encoding = "latin-1"
        state.notes.append(_("not text in a known encoding; read as Latin-1 so no byte is lost"))
    state.encoding = encoding
    if encoding.startswith(_WIDE):
        # Line breaks of wide encodings are two or four bytes: decode the whole document at once.
        text = (head + stream.read()).decode(encoding, errors="replace")
        lines = pl.Series("line", text.split("\n"), dtype=pl.String).str.strip_chars_end("\r")
        yield TextBlock(1, lines, encoding)
        return
    line_no = 1
    first = True
    rest = io.BufferedReader(_Prefixed(head, stream)) if hasattr(stream, "read") else stream
    for block in _blocks(rest, block_bytes):
        text = _decode_block(block, encoding, state)
        if first:
            text = text.removeprefix("\ufeff")
            first = False
        lines = split_lines(text)
        yield TextBlock(line_no, lines, encoding)
        line_no += lines.len()


def split_lines(text: str) -> pl.Series:
    """The lines of ``text`` (no final empty one, ``\r`` before a line break removed), split by
    Polars from the text's UTF-8 bytes: a Python list of the lines would cost about seven times as
    much, all of it holding the GIL that the stages and the store thread need."""
    lines = pl.Series("line", [text.encode("utf-8")], dtype=pl.Binary).cast(pl.String).str.split("\n").explode()
    if lines.len() and lines[-1] == "":
        lines = lines.head(-1)
    return lines.str.strip_chars_end("\r")


def _decode_block(block: bytes, encoding: str, state: ReadState) -> str:
    try:
        return block.decode(encoding)
    except UnicodeDecodeError:
        pass
    try:
        other = detect_encoding(block)
        text = block.decode(other)
        state.notes.append(_("part of the file is in {encoding}, not {first}; decoded as {encoding}").format(
            encoding=other, first=encoding))
        return text
    except (Invalid, UnicodeDecodeError, LookupError):
        state.notes.append(_("bytes that are not valid {encoding} were replaced with U+FFFD").format(
            encoding=encoding))
        return block.decode(encoding, errors="replace")


class _Prefixed(io.RawIOBase):
    """A stream that first returns ``head`` and then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: BinaryIO):
        self._head = memoryview(head)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        if self._head.nbytes:
            n = min(len(buf), self._head.nbytes)
            buf[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buf))
        buf[: len(data)] = data
        return len(data)


def split_csv_header(line: str, sep: str = ",") -> list[str]:
    """The column names of a header line (quotes removed, spaces trimmed)."""
    import csv

    try:
        row = next(csv.reader([line.replace("\r", " ").replace("\x00", "")], delimiter=sep), [])
    except csv.Error:
        row = line.split(sep)
    return [c.strip().lstrip("#").strip() for c in row]


def field_counts(lines: pl.Series, sep: str = ",") -> pl.Series:
    """Fields per line, counting separators outside double quotes (vectorised)."""
    quoted = lines.str.contains('"', literal=True).fill_null(False)
    if not quoted.any():  # the usual case: no quotes, so no regex pass over every line
        return lines.str.count_matches(sep, literal=True) + 1
    stripped = lines.str.replace_all(_QUOTED, "")
    return stripped.str.count_matches(sep, literal=True) + 1


def _bad_from_lines(lines: pl.Series, numbers: pl.Series, reason: str) -> list[BadRecord]:
    return [BadRecord(int(n), reason, (s or "")[:RAW_KEEP]) for n, s in zip(numbers, lines, strict=True)]


def parse_csv_lines(lines: pl.Series, numbers: pl.Series, header: list[str], sep: str = ",",
                    ) -> tuple[pl.DataFrame, list[BadRecord]]:
    """Parse lines that each hold one CSV record with ``len(header)`` fields; lines with another
    number of fields or an unbalanced quote become :class:`BadRecord`s. Returns string columns
    named by ``header`` plus ``raw.line``."""
    n = len(header)
    counts = field_counts(lines, sep)
    quotes_ok = (lines.str.count_matches('"', literal=True) % 2) == 0
    good_mask = (counts == n) & quotes_ok
    bad: list[BadRecord] = []
    wrong = ~good_mask
    if wrong.any():
        bl, bn, bc, bq = lines.filter(wrong), numbers.filter(wrong), counts.filter(wrong), quotes_ok.filter(wrong)
        for text, num, cnt, q in zip(bl, bn, bc, bq, strict=True):
            reason = (_("unbalanced quote (truncated or multi-line record)") if not q else
                      _("{got} fields where the header has {want}").format(got=cnt, want=n))
            bad.append(BadRecord(int(num), reason, (text or "")[:RAW_KEEP]))
    good, good_nums = lines.filter(good_mask), numbers.filter(good_mask)
    if good.is_empty():
        return _empty(header), bad
    # Joined by Polars: no Python string per line.
    payload = (good.str.join("\n").item() + "\n").encode("utf-8")
    try:
        frame = pl.read_csv(io.BytesIO(payload), has_header=False, new_columns=_unique(header), separator=sep,
                            infer_schema=False, quote_char='"',
                            raise_if_empty=False)
    except (pl.exceptions.PolarsError, ValueError):
        frame, good_nums, more_bad = _parse_slowly(good, good_nums, header, sep)
        bad.extend(more_bad)
    if frame.height != good_nums.len():
        frame, good_nums, more_bad = _parse_slowly(good, good_nums, header, sep)
        bad.extend(more_bad)
    return frame.with_columns(good_nums.alias(LINE).cast(pl.Int64)), bad


def _unique(header: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, h in enumerate(header):
        name = h or f"column_{i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        out.append(name)
    return out


def _empty(header: list[str]) -> pl.DataFrame:
    return pl.DataFrame({h: pl.Series([], dtype=pl.String) for h in _unique(header)} |
                        {LINE: pl.Series([], dtype=pl.Int64)})


def _parse_slowly(lines: pl.Series, numbers: pl.Series, header: list[str], sep: str,
                  ) -> tuple[pl.DataFrame, pl.Series, list[BadRecord]]:
    """The fallback for a block the columnar reader refused: record by record, so one broken
    record is quarantined and the rest still parse."""
    import csv

    names = _unique(header)
    rows, nums, bad = [], [], []
    for text, num in zip(lines, numbers, strict=True):
        try:
            rec = next(csv.reader([text], delimiter=sep, strict=True))
        except (csv.Error, StopIteration) as exc:
            bad.append(BadRecord(int(num), _("not a valid CSV record: {error}").format(error=exc), text[:RAW_KEEP]))
            continue
        if len(rec) != len(names):
            bad.append(BadRecord(int(num), _("{got} fields where the header has {want}").format(
                got=len(rec), want=len(names)), text[:RAW_KEEP]))
            continue
        rows.append(rec)
        nums.append(num)
    frame = pl.DataFrame(rows, schema=names, orient="row") if rows else _empty(header).drop(LINE)
    return frame, pl.Series(LINE, nums, dtype=pl.Int64), bad


def iter_csv(source: Source, *, sep: str = ",", comment: str | None = None, header: list[str] | None = None,
             header_in_comment: bool = False, batch_rows: int | None = None,
             ) -> Iterator[tuple[pl.DataFrame, list[BadRecord], list[str], list[str]]]:
    """Read a CSV document in batches: ``(frame, bad records, notes, header)``.

    ``header`` given means the file has none. ``comment`` lines are skipped; with
    ``header_in_comment`` the last comment line before the data is the header (abuse.ch style).
    Blank lines are not records. Notes say what the reader should know (empty file, header only).
    """
    batch_rows = batch_rows or batch_rows_setting()
    state = ReadState()
    cols = list(header) if header else None
    last_comment: str | None = None
    records = 0
    saw_any = False
    for block in iter_text_blocks(source.stream, state):
        saw_any = True
        numbers = pl.int_range(block.first_line, block.first_line + block.lines.len(), eager=True).cast(pl.Int64)
        frame = pl.DataFrame({"line": block.lines, "n": numbers})
        frame = frame.filter(pl.col("line").str.strip_chars() != "")
        if comment:
            # As IntelMQ: a comment line may start with spaces or tabs.
            is_comment = pl.col("line").str.strip_chars_start(" \t").str.starts_with(comment)
            comments = frame.filter(is_comment)
            if cols is None and header_in_comment and comments.height:
                data_start = frame.filter(~is_comment)
                first_data = data_start["n"][0] if data_start.height else None
                before = comments.filter(pl.col("n") < first_data) if first_data is not None else comments
                candidates = before["line"].to_list()
                for c in reversed(candidates):
                    if sep in c:
                        last_comment = c.lstrip(" \t").lstrip(comment)
                        break
            frame = frame.filter(~is_comment)
        if cols is None:
            if last_comment is not None:
                cols = split_csv_header(last_comment, sep)
            elif frame.height:
                cols = split_csv_header(frame["line"][0], sep)
                frame = frame.slice(1)
            else:
                continue
        notes = list(state.notes)
        state.notes.clear()
        for start in range(0, frame.height, batch_rows):
            part = frame.slice(start, batch_rows)
            parsed, bad = parse_csv_lines(part["line"], part["n"], cols, sep)
            records += parsed.height + len(bad)
            yield parsed, bad, notes, cols
            notes = []
        if notes:
            yield _empty(cols), [], notes, cols
    if not saw_any:
        yield _empty(cols or []), [], [_("the file is empty")], cols or []
    elif records == 0:
        yield _empty(cols or []), [], [_("the file has a header but no data rows") if cols else
                                       _("the file has no data rows")] + state.notes, cols or []


def iter_json_lines(source: Source, batch_rows: int | None = None,
                    ) -> Iterator[tuple[pl.DataFrame, list[BadRecord], list[str]]]:
    """Read a JSON-lines document: one object per line. The columnar reader takes each block;
    only a block with a broken line is read line by line to find and quarantine it."""
    batch_rows = batch_rows or batch_rows_setting()
    state = ReadState()
    records = 0
    saw_any = False
    for block in iter_text_blocks(source.stream, state):
        saw_any = True
        numbers = pl.int_range(block.first_line, block.first_line + block.lines.len(), eager=True).cast(pl.Int64)
        frame = pl.DataFrame({"line": block.lines, "n": numbers}).filter(pl.col("line").str.strip_chars() != "")
        notes = list(state.notes)
        state.notes.clear()
        for start in range(0, frame.height, batch_rows):
            part = frame.slice(start, batch_rows)
            rows, bad = _json_rows(part["line"], part["n"])
            records += rows.height + len(bad)
            yield rows, bad, notes
            notes = []
    if not saw_any:
        yield pl.DataFrame({LINE: pl.Series([], dtype=pl.Int64)}), [], [_("the file is empty")]
    elif records == 0:
        yield pl.DataFrame({LINE: pl.Series([], dtype=pl.Int64)}), [], [_("the file has no data rows")]


def _json_rows(lines: pl.Series, numbers: pl.Series) -> tuple[pl.DataFrame, list[BadRecord]]:
    payload = ("\n".join(lines.to_list()) + "\n").encode("utf-8")
    try:
        frame = pl.read_ndjson(io.BytesIO(payload), infer_schema_length=None)
        if frame.height == lines.len():
            # hstack, not with_columns: a frame of empty objects has rows but no columns.
            return pl.DataFrame({LINE: numbers}).hstack(stringify(frame)).select(
                [*frame.columns, LINE]), []
    except (pl.exceptions.PolarsError, ValueError, RuntimeError):
        pass
    objs, nums, bad = [], [], []
    for text, num in zip(lines, numbers, strict=True):
        try:
            obj = json.loads(text)
        except ValueError as exc:
            bad.append(BadRecord(int(num), _("not valid JSON: {error}").format(error=exc), text[:RAW_KEEP]))
            continue
        if not isinstance(obj, dict):
            bad.append(BadRecord(int(num), _("a JSON object was expected"), text[:RAW_KEEP]))
            continue
        objs.append(obj)
        nums.append(num)
    return records_frame(objs, nums), bad


def records_frame(objs: list[dict], numbers: Iterable[int]) -> pl.DataFrame:
    """String columns from a list of JSON objects (nested values kept as JSON text)."""
    nums = list(numbers)
    if not objs:
        return pl.DataFrame({LINE: pl.Series([], dtype=pl.Int64)})
    keys: dict[str, None] = {}
    for o in objs:
        keys.update(dict.fromkeys(o))
    cols = {k: pl.Series(k, [_as_text(o.get(k)) for o in objs], dtype=pl.String) for k in keys if k != LINE}
    return pl.DataFrame([*cols.values(), pl.Series(LINE, nums, dtype=pl.Int64)])


def _as_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def stringify(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as text: nested values become JSON, scalars their plain spelling."""
    out = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.String:
            out.append(col)
        elif dtype == pl.Boolean:
            out.append(pl.when(col).then(pl.lit("true")).when(~col).then(pl.lit("false")).alias(name))
        elif isinstance(dtype, pl.Struct | pl.List | pl.Array):
            out.append(col.struct.json_encode().alias(name) if isinstance(dtype, pl.Struct)
                       else col.list.eval(pl.element().cast(pl.String)).list.join(",").alias(name)
                       if isinstance(dtype, pl.List) and not isinstance(dtype.inner, pl.Struct | pl.List)
                       else pl.col(name).map_elements(lambda v: json.dumps(v, ensure_ascii=False, default=str),
                                                      return_dtype=pl.String).alias(name))
        elif dtype == pl.Null:
            out.append(col.cast(pl.String))
        else:
            out.append(col.cast(pl.String))
    return frame.select(out)


def load_json_document(source: Source, limit: int = 512 * 1024 * 1024):
    """A whole JSON document (feeds that publish one array or object), decoded from any of the
    supported encodings; raises :class:`Invalid` naming the position of a syntax error."""
    raw = source.stream.read(limit + 1)
    if len(raw) > limit:
        raise Invalid("file", _("is larger than {limit} bytes").format(limit=limit))
    if not raw.strip():
        return None
    from commonwatch.textio import decode_bytes

    text = decode_bytes(raw).lstrip("\ufeff")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise Invalid("file", _("is not valid JSON: {error}").format(error=exc)) from None


def batch(frame: pl.DataFrame, bad: list[BadRecord] | None = None, notes: list[str] | None = None) -> ParsedBatch:
    return ParsedBatch(frame=frame, bad=bad or [], notes=notes or [])


def rename_to_fields(frame: pl.DataFrame, mapping: dict[str, str], *, keep_extra: bool = True,
                     constants: dict[str, str] | None = None) -> pl.DataFrame:
    """Columns named by the feed -> harmonisation names. Unmapped columns go to ``extra.<name>``
    (or are dropped when ``keep_extra`` is false); ``constants`` add fixed columns. Several feed
    columns may map to one field: the first non-empty wins."""
    exprs: dict[str, pl.Expr] = {}
    for index, col in enumerate(frame.columns):
        if col == LINE:
            continue
        target = mapping.get(col)
        if target is None:
            if keep_extra and col:
                target = "extra." + col.strip().lower().replace(" ", "_")
            else:
                continue
        if target == "__drop__":
            continue
        # By position: a header may name a column "*" or "^...$", which pl.col would expand.
        value = pl.nth(index).cast(pl.String)
        value = pl.when(value.str.strip_chars() == "").then(None).otherwise(value)
        exprs[target] = pl.coalesce(exprs[target], value) if target in exprs else value
    out = frame.select([e.alias(k) for k, e in exprs.items()] + [pl.col(LINE)])
    if constants:
        out = out.with_columns([pl.lit(v, dtype=pl.String).alias(k) for k, v in constants.items()
                                if k not in out.columns or v is not None])
    return out

