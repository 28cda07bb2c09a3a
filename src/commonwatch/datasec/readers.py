"""Reading what the scanner scans, in bounded memory: files of any size and database tables.

Every reader yields ``(part, frame)`` pairs: ``part`` names the table, sheet or archive member,
``frame`` is a Polars frame of text columns holding at most one batch of rows. Text is decoded
incrementally in the encoding :func:`commonwatch.textio.detect_encoding` finds (UTF-8/16,
GBK/GB18030). Compressed input (gzip, zip, the zip inside XLSX) is decompressed with a bound on
the expansion, so a zip bomb is refused instead of filling the disk or memory.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import polars as pl

from commonwatch.errors import Invalid
from commonwatch.i18n import _
from commonwatch.textio import detect_encoding

TEXT_KINDS = ("csv", "tsv", "json", "jsonl", "parquet", "xlsx", "text")
EXTENSIONS = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".parquet": "parquet", ".pq": "parquet", ".xlsx": "xlsx", ".xlsm": "xlsx", ".txt": "text", ".log": "text",
}


@dataclass(frozen=True)
class Limits:
    """Bounds that keep a scan's memory flat whatever the input."""

    block_bytes: int = 4 * 1024 * 1024  # bytes read at a time
    batch_rows: int = 100_000  # rows per frame for row-wise formats
    max_record_bytes: int = 64 * 1024 * 1024  # one CSV record or JSON value
    max_expansion_ratio: int = 200  # decompressed / compressed
    expansion_grace_bytes: int = 64 * 1024 * 1024  # small archives may expand more
    max_members: int = 10_000


class BoundedReader(io.RawIOBase):
    """Wraps a decompressing stream; refuses to produce more than ratio x the compressed size."""

    def __init__(self, inner: IO[bytes], compressed_size: int, limits: Limits, name: str):
        self._inner = inner
        self._allowed = max(compressed_size * limits.max_expansion_ratio, limits.expansion_grace_bytes)
        self._produced = 0
        self._name = name
        self._limits = limits

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._inner.read(len(buffer))
        self._produced += len(data)
        if self._produced > self._allowed:
            raise Invalid("file", _("{name} expands beyond {ratio}x its compressed size; refused as a possible "
                                    "zip bomb").format(name=self._name, ratio=self._limits.max_expansion_ratio))
        buffer[: len(data)] = data
        return len(data)


def kind_of(name: str, head: bytes = b"") -> str:
    """The format of a file from its name, else from its first bytes."""
    suffix = Path(name.lower()).suffix
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    return "text"


def read_path(path: Path, limits: Limits = Limits(), kind: str | None = None) -> Iterator[tuple[str, pl.DataFrame]]:
    """Batches of a file; ``kind`` overrides the format guessed from the name and content."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise Invalid("file", _("{path} cannot be read: {reason}").format(path=path, reason=exc.strerror)) from None
    with fh:
        head = fh.read(8)
        fh.seek(0)
        guessed = kind or kind_of(path.name, head)
        if path.name.lower().endswith(".gz") and not kind:
            guessed = "gzip"
        if guessed == "zip" or (guessed not in ("xlsx",) and head.startswith(b"PK\x03\x04") and not kind):
            yield from _read_zip(fh, path.name, limits)
            return
        if guessed == "gzip":
            inner_name = path.name[:-3] if path.name.lower().endswith(".gz") else path.name + ".out"
            size = path.stat().st_size
            stream = io.BufferedReader(BoundedReader(gzip.GzipFile(fileobj=fh), size, limits, path.name),
                                       buffer_size=limits.block_bytes)
            yield from read_stream(stream, inner_name, kind_of(inner_name), limits)
            return
        if guessed == "xlsx":
            yield from _read_xlsx(fh, path.name, limits)
            return
        if guessed == "parquet":
            yield from _read_parquet(fh, path.name, limits)
            return
        yield from read_stream(fh, path.name, guessed, limits)


def read_stream(fh: IO[bytes], name: str, kind: str, limits: Limits) -> Iterator[tuple[str, pl.DataFrame]]:
    """Batches of a byte stream in a text format (csv, tsv, json, jsonl, text)."""
    try:
        if kind in ("csv", "tsv"):
            yield from _read_csv(fh, name, "\t" if kind == "tsv" else ",", limits)
        elif kind == "jsonl":
            yield from _read_jsonl(fh, name, limits)
        elif kind == "json":
            yield from _read_json(fh, name, limits)
        elif kind == "parquet":
            yield from _read_parquet(fh, name, limits)
        else:
            yield from _read_text(fh, name, limits)
    except (gzip.BadGzipFile, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise Invalid("file", _("{name} is corrupt: {reason}").format(name=name, reason=exc)) from None


# --- text decoding ------------------------------------------------------------------------------------

def _text_blocks(fh: IO[bytes], name: str, limits: Limits) -> Iterator[str]:
    """Decoded text, block by block, in the encoding detected from the first block."""
    first = fh.read(limits.block_bytes)
    if not first:
        return
    if b"\x00" in first[:65536] and not first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # UTF-16 without a BOM has NULs too; only treat it as text if it decodes as such.
        encoding = _utf16_without_bom(first)
        if encoding is None:
            raise Invalid("file", _("{name} looks like a binary file (it contains NUL bytes), not text").format(
                name=name))
    else:
        try:
            encoding = detect_encoding(first[:1_000_000])
        except Invalid:
            raise Invalid("file", _("{name} is not text in a known encoding").format(name=name)) from None
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    block = first
    while block:
        try:
            text = decoder.decode(block)
        except UnicodeDecodeError as exc:
            raise Invalid("file", _("{name} could not be decoded as {encoding} at byte {pos}").format(
                name=name, encoding=encoding, pos=offset + exc.start)) from None
        offset += len(block)
        if text:
            yield text
        block = fh.read(limits.block_bytes)
    try:
        tail = decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise Invalid("file", _("{name} ends in the middle of a character").format(name=name)) from None
    if tail:
        yield tail


def _utf16_without_bom(sample: bytes) -> str | None:
    even, odd = sample[0:4096:2], sample[1:4096:2]
    if odd.count(0) > len(odd) * 0.3 and even.count(0) < len(even) * 0.1:
        return "utf-16-le"
    if even.count(0) > len(even) * 0.3 and odd.count(0) < len(odd) * 0.1:
        return "utf-16-be"
    return None


def _lines(fh: IO[bytes], name: str, limits: Limits, *, balanced_quotes: bool = False) -> Iterator[str]:
    """Chunks of whole lines (whole CSV records when ``balanced_quotes``), each about a block long."""
    pending = ""
    for text in _text_blocks(fh, name, limits):
        pending += text
        cut = pending.rfind("\n")
        if cut < 0:
            if len(pending) > limits.max_record_bytes:
                if balanced_quotes:
                    raise Invalid("file", _("{name}: a record is longer than {limit} bytes (an unclosed quote?)")
                                  .format(name=name, limit=limits.max_record_bytes))
                yield pending  # a text without line breaks: scan it in pieces
                pending = ""
            continue
        chunk = pending[: cut + 1]
        if balanced_quotes and chunk.count('"') % 2:
            if len(pending) > limits.max_record_bytes:
                raise Invalid("file", _("{name}: a record is longer than {limit} bytes (an unclosed quote?)")
                              .format(name=name, limit=limits.max_record_bytes))
            continue  # a quoted field spans the cut: read on until it closes
        pending = pending[cut + 1:]
        yield chunk
    if pending:
        if balanced_quotes and pending.count('"') % 2:
            raise Invalid("file", _("{name}: the file ends inside a quoted field").format(name=name))
        yield pending


# --- formats --------------------------------------------------------------------------------------------

def _read_text(fh: IO[bytes], name: str, limits: Limits) -> Iterator[tuple[str, pl.DataFrame]]:
    for chunk in _lines(fh, name, limits):
        lines = pl.Series("text", [chunk]).str.split("\n").explode()
        lines = lines.str.strip_suffix("\r").filter(lines.str.len_bytes() > 0)
        if lines.len():
            yield name, lines.to_frame("text")


def _read_csv(fh: IO[bytes], name: str, separator: str, limits: Limits) -> Iterator[tuple[str, pl.DataFrame]]:
    header: list[str] | None = None
    line_no = 1
    for chunk in _lines(fh, name, limits, balanced_quotes=True):
        if header is None:
            first, _nl, chunk = chunk.partition("\n")
            header = _header(first, separator, name)
            line_no += 1
            if not chunk.strip():
                continue
        try:
            # The header sets the width, whatever the first row has: short rows get nulls, fields
            # past the header are dropped (they have no name to report them under).
            frame = pl.read_csv(io.BytesIO(chunk.encode("utf-8")), has_header=False, separator=separator,
                                schema=dict.fromkeys(header, pl.String), truncate_ragged_lines=True,
                                quote_char='"', missing_columns="insert", extra_columns="ignore")
        except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, pl.exceptions.ShapeError,
                pl.exceptions.SchemaError) as exc:
            raise Invalid("file", _("{name}: cannot parse the rows starting at line {line}: {reason}").format(
                name=name, line=line_no, reason=str(exc).splitlines()[0])) from None
        line_no += chunk.count("\n")
        yield name, frame


def _header(line: str, separator: str, name: str) -> list[str]:
    try:
        row = next(csv.reader([line.lstrip("\ufeff").rstrip("\r")], delimiter=separator), [])
    except csv.Error as exc:  # e.g. a carriage return inside the line
        raise Invalid("file", _("{name}: the first line (the header) cannot be read: {reason}").format(
            name=name, reason=exc)) from None
    if not row:
        raise Invalid("file", _("{name}: the first line (the header) is empty").format(name=name))
    seen: dict[str, int] = {}
    out = []
    for i, raw in enumerate(row):
        col = raw.strip() or f"column_{i + 1}"
        if col in seen:
            seen[col] += 1
            col = f"{col}_{seen[col]}"
        else:
            seen[col] = 1
        out.append(col)
    return out


def _read_jsonl(fh: IO[bytes], name: str, limits: Limits) -> Iterator[tuple[str, pl.DataFrame]]:
    line_no = 1
    for chunk in _lines(fh, name, limits):
        body = "\n".join(line for line in chunk.split("\n") if line.strip())
        if body:
            try:
                frame = pl.read_ndjson(io.BytesIO(body.encode("utf-8")), infer_schema_length=None)
            except Exception:  # polars raises several kinds; find the line for the message
                raise Invalid("file", _bad_json_line(chunk, name, line_no)) from None
            yield name, text_columns(frame)
        line_no += chunk.count("\n")


def _bad_json_line(chunk: str, name: str, first_line: int) -> str:
    for i, line in enumerate(chunk.split("\n")):
        if line.strip():
            try:
                value = json.loads(line)
            except ValueError as exc:
                return _("{name}: line {line} is not valid JSON: {reason}").format(name=name, line=first_line + i,
                                                                                   reason=exc)
            if not isinstance(value, dict):
                return _("{name}: line {line} is not a JSON object").format(name=name, line=first_line + i)
    return _("{name}: the records starting at line {line} cannot be read as JSON lines").format(
        name=name, line=first_line)


def _read_json(fh: IO[bytes], name: str, limits: Limits) -> Iterator[tuple[str, pl.DataFrame]]:
    """A JSON array of records, streamed value by value; a single object is one record."""
    decoder = json.JSONDecoder()
    blocks = _text_blocks(fh, name, limits)
    state = {"buf": "", "pos": 0, "consumed": 0, "exhausted": False}

    def fill() -> bool:
        if state["exhausted"]:
            return False
        more = next(blocks, None)
        if more is None:
            state["exhausted"] = True
            return False
        state["consumed"] += state["pos"]
        state["buf"] = state["buf"][state["pos"]:] + more
        state["pos"] = 0
        return True

    def skip(chars: str) -> bool:
        """Skip ``chars``; False at the end of the input."""
        while True:
            buf, pos = state["buf"], state["pos"]
            while pos < len(buf) and buf[pos] in chars:
                pos += 1
            state["pos"] = pos
            if pos < len(buf):
                return True
            if not fill():
                return False

    def too_large() -> Invalid:
        return Invalid("file", _("{name}: a JSON value is larger than {limit} bytes").format(
            name=name, limit=limits.max_record_bytes))

    def bad() -> Invalid:
        return Invalid("file", _("{name}: invalid JSON near character {pos}").format(
            name=name, pos=state["consumed"] + state["pos"]))

    if not skip(" \t\r\n\ufeff"):
        return
    first = state["buf"][state["pos"]]
    if first == "{":
        while fill():
            if len(state["buf"]) > limits.max_record_bytes:
                raise too_large()
        try:
            value, _end = decoder.raw_decode(state["buf"], state["pos"])
        except ValueError:
            raise bad() from None
        yield name, text_columns(_frame_of([value]))
        return
    if first != "[":
        raise Invalid("file", _("{name} is not a JSON array or object").format(name=name))
    state["pos"] += 1
    batch: list[Any] = []
    while True:
        if not skip(" \t\r\n,"):
            raise Invalid("file", _("{name}: the JSON array is not closed").format(name=name))
        if state["buf"][state["pos"]] == "]":
            break
        try:
            value, end = decoder.raw_decode(state["buf"], state["pos"])
        except ValueError:
            if len(state["buf"]) - state["pos"] > limits.max_record_bytes:
                raise too_large() from None
            if fill():
                continue
            raise bad() from None
        if end == len(state["buf"]) and fill():
            continue  # a number at the end of a block may go on in the next: decode it again
        batch.append(value)
        state["pos"] = end
        if len(batch) >= limits.batch_rows:
            yield name, text_columns(_frame_of(batch))
            batch = []
    if batch:
        yield name, text_columns(_frame_of(batch))


def _frame_of(records: list[Any]) -> pl.DataFrame:
    rows = [r if isinstance(r, dict) else {"value": r} for r in records]
    try:
        return pl.from_dicts(rows, infer_schema_length=None, strict=False)
    except Exception:
        # Values of one field with clashing types: fall back to their JSON text.
        return pl.from_dicts([{k: json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v
                               for k, v in r.items()} for r in rows], infer_schema_length=None)


def _read_parquet(fh: IO[bytes], name: str, limits: Limits) -> Iterator[tuple[str, pl.DataFrame]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(fh)
        for batch in pf.iter_batches(batch_size=limits.batch_rows):
            yield name, text_columns(pl.from_arrow(pa.Table.from_batches([batch])))  # type: ignore[arg-type]
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
        raise Invalid("file", _("{name} is not a readable Parquet file: {reason}").format(
            name=name, reason=exc)) from None


def _check_zip(zf: zipfile.ZipFile, name: str, compressed_size: int, limits: Limits) -> None:
    """Refuse archives whose declared expansion is out of bounds (zipfile never reads past it)."""
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise Invalid("file", _("{name} has more than {n} members").format(name=name, n=limits.max_members))
    total = sum(i.file_size for i in infos)
    allowed = max(compressed_size * limits.max_expansion_ratio, limits.expansion_grace_bytes)
    if total > allowed:
        raise Invalid("file", _("{name} expands beyond {ratio}x its compressed size; refused as a possible "
                                "zip bomb").format(name=name, ratio=limits.max_expansion_ratio))


def _read_zip(fh: IO[bytes], name: str, limits: Limits) -> Iterator[tuple[str, pl.DataFrame]]:
    try:
        zf = zipfile.ZipFile(fh)
    except zipfile.BadZipFile as exc:
        raise Invalid("file", _("{name} is corrupt: {reason}").format(name=name, reason=exc)) from None
    with zf:
        fh.seek(0, io.SEEK_END)
        _check_zip(zf, name, fh.tell(), limits)
        for info in zf.infolist():
            if info.is_dir():
                continue
            member = f"{name}/{info.filename}"
            kind = kind_of(info.filename)
            if kind in ("xlsx", "parquet") or info.filename.lower().endswith((".zip", ".gz")):
                raise Invalid("file", _("{name}: nested archives and workbooks inside archives are not scanned; "
                                        "extract {member} first").format(name=name, member=info.filename))
            try:
                with zf.open(info) as inner:
                    bounded = io.BufferedReader(BoundedReader(inner, max(info.compress_size, 1), limits, member),
                                                buffer_size=limits.block_bytes)
                    yield from read_stream(bounded, member, kind, limits)
            except (zipfile.BadZipFile, RuntimeError) as exc:
                raise Invalid("file", _("{name} is corrupt: {reason}").format(name=member, reason=exc)) from None


def _read_xlsx(fh: IO[bytes], name: str, limits: Limits) -> Iterator[tuple[str, pl.DataFrame]]:
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(fh) as zf:
            fh.seek(0, io.SEEK_END)
            _check_zip(zf, name, fh.tell(), limits)
        fh.seek(0)
        wb = load_workbook(fh, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise Invalid("file", _("{name} is not a readable XLSX workbook: {reason}").format(
            name=name, reason=exc)) from None
    try:
        for ws in wb.worksheets:
            part = f"{name}:{ws.title}"
            rows = ws.iter_rows(values_only=True)
            first = next(rows, None)
            if first is None:
                continue
            header = _header(",".join(_csv_cell(v) for v in first), ",", part)
            width = len(header)
            batch: list[list[str | None]] = []
            for row in rows:
                batch.append([None if v is None else str(v) for v in row[:width]] + [None] * (width - len(row)))
                if len(batch) >= limits.batch_rows:
                    yield part, pl.DataFrame(batch, schema=header, orient="row")
                    batch = []
            if batch:
                yield part, pl.DataFrame(batch, schema=header, orient="row")
    finally:
        wb.close()


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


# --- databases ------------------------------------------------------------------------------------------

def redact_url(url: str) -> str:
    """The URL without its password, for messages and records."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def read_database(url: str, *, sample_rows: int | None = 10_000, tables: list[str] | None = None,
                  limits: Limits = Limits()) -> Iterator[tuple[str, pl.DataFrame]]:
    """Batches of each table of a database reached by SQLAlchemy URL; ``sample_rows=None`` reads all rows."""
    from sqlalchemy import MetaData, create_engine, select
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    from commonwatch.db import normalise_url

    shown = redact_url(url)
    try:
        engine = create_engine(normalise_url(url), pool_pre_ping=False)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise Invalid("database", _("{url} is not a usable database URL: {reason}").format(url=shown, reason=exc)) \
            from None
    try:
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
            raise Invalid("database", _("could not connect to {url}: {reason}").format(url=shown, reason=reason)) \
                from None
        with conn:
            meta = MetaData()
            try:
                meta.reflect(bind=conn, only=tables or None)
            except SQLAlchemyError as exc:
                raise Invalid("database", _("could not list the tables of {url}: {reason}").format(
                    url=shown, reason=str(exc).splitlines()[0])) from None
            for table in meta.sorted_tables:
                stmt = select(table)
                if sample_rows is not None:
                    stmt = stmt.limit(sample_rows)
                result = conn.execution_options(stream_results=True, yield_per=limits.batch_rows).execute(stmt)
                names = list(result.keys())
                while True:
                    rows = result.fetchmany(limits.batch_rows)
                    if not rows:
                        break
                    yield table.name, text_columns(pl.DataFrame([tuple(r) for r in rows], schema=names, orient="row",
                                                                strict=False, infer_schema_length=None))
    finally:
        engine.dispose()


# --- columns as text ---------------------------------------------------------------------------------

def text_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as text: nested records become ``parent.child`` columns, lists their JSON.

    Works on the Series themselves, not on ``pl.col(name)``: field names come from the data and
    may be anything (``*``, an empty string, a regex-looking name).
    """
    out: list[pl.Series] = []
    seen: dict[str, int] = {}

    def add(name: str, series: pl.Series) -> None:
        dtype = series.dtype
        if isinstance(dtype, pl.Struct):
            for child in series.struct.unnest().get_columns():
                add(f"{name}.{child.name}", child)
            return
        if dtype == pl.String:
            text = series
        elif isinstance(dtype, pl.List | pl.Array):
            text = (series.to_frame("v").select(pl.struct(pl.col("v")).struct.json_encode()).to_series()
                    .str.slice(5).str.strip_suffix("}"))
        elif dtype in (pl.Binary, pl.Null, pl.Object):
            return
        else:
            text = series.cast(pl.String, strict=False)
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        out.append(text.alias(name))

    for column in frame.get_columns():
        add(column.name, column)
    return pl.DataFrame(out) if out else pl.DataFrame()
