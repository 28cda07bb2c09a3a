"""Reading files for the scanner: every format, every encoding, and bad input (corrupt files, zip
bombs, a 10 GB file, huge records) refused with a clear message and in bounded memory."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import subprocess
import sys
import textwrap
import zipfile
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from commonwatch.datasec import synthetic as syn
from commonwatch.datasec.readers import Limits, read_path
from commonwatch.datasec.scanner import scan_path
from commonwatch.errors import Invalid

TODAY = date(2026, 11, 25)


def _people(n: int = 25, seed: int = 1) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [{"name": syn.person_name(rng), "id_no": syn.resident_id(rng), "phone": syn.mobile(rng),
             "email": syn.email(rng)} for _ in range(n)]


def _found(report) -> set[tuple[str, str, int]]:
    return {(f.field, f.detector, f.count) for f in report.findings}


EXPECTED = {("id_no", "cn_resident_id", 25), ("phone", "cn_mobile", 25), ("email", "email", 25)}


def _csv(rows: list[dict[str, str]], sep: str = ",") -> str:
    header = sep.join(rows[0])
    return header + "\n" + "\n".join(sep.join(r.values()) for r in rows) + "\n"


def test_csv_tsv_json_jsonl_parquet_xlsx_and_text(tmp_path):
    rows = _people()
    (tmp_path / "p.csv").write_text(_csv(rows), encoding="utf-8")
    (tmp_path / "p.tsv").write_text(_csv(rows, "\t"), encoding="utf-8")
    (tmp_path / "p.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    pl.DataFrame(rows).write_parquet(tmp_path / "p.parquet")
    wb = Workbook()
    ws = wb.active
    ws.append(list(rows[0]))
    for r in rows:
        ws.append(list(r.values()))
    wb.save(tmp_path / "p.xlsx")
    for name in ("p.csv", "p.tsv", "p.json", "p.jsonl", "p.parquet", "p.xlsx"):
        report = scan_path(tmp_path / name, today=TODAY)
        assert _found(report) >= EXPECTED, name
        assert report.rows == 25, name
    (tmp_path / "p.log").write_text("\n".join(f"user {r['phone']} id {r['id_no']}" for r in rows), encoding="utf-8")
    text = scan_path(tmp_path / "p.log", today=TODAY)
    assert {("text", "cn_mobile", 25), ("text", "cn_resident_id", 25)} <= _found(text)


def test_nested_json_becomes_dotted_fields(tmp_path):
    rows = [{"customer": {"contact": {"mobile": r["phone"]}, "tags": [r["email"]]}} for r in _people()]
    (tmp_path / "n.json").write_text(json.dumps(rows), encoding="utf-8")
    found = _found(scan_path(tmp_path / "n.json", today=TODAY))
    assert ("customer.contact.mobile", "cn_mobile", 25) in found
    assert ("customer.tags", "email", 25) in found


def test_a_single_json_object_and_an_empty_array(tmp_path):
    (tmp_path / "one.json").write_text(json.dumps(_people(1)[0]), encoding="utf-8")
    assert scan_path(tmp_path / "one.json", today=TODAY).rows == 1
    (tmp_path / "none.json").write_text("[]", encoding="utf-8")
    assert scan_path(tmp_path / "none.json", today=TODAY).rows == 0


def test_json_array_is_streamed_in_batches(tmp_path):
    rows = _people(250)
    (tmp_path / "many.json").write_text(json.dumps(rows), encoding="utf-8")
    limits = Limits(block_bytes=1024, batch_rows=100)
    sizes = [f.height for _p, f in read_path(tmp_path / "many.json", limits)]
    assert sizes == [100, 100, 50]


def test_csv_with_quoted_newlines_across_blocks(tmp_path):
    rows = _people(40)
    body = "note,phone\n" + "".join(f'"line one\nline two, {i}",{r["phone"]}\n' for i, r in enumerate(rows))
    (tmp_path / "q.csv").write_text(body, encoding="utf-8")
    report = scan_path(tmp_path / "q.csv", today=TODAY, limits=Limits(block_bytes=64))
    assert ("phone", "cn_mobile", 40) in _found(report)
    assert report.rows == 40


def test_ragged_rows_are_read_to_the_width_of_the_header(tmp_path):
    """A short first row must not cut the rows after it; fields past the header are dropped."""
    rows = _people(25)
    body = "name,phone,email\nalice\n" + "".join(f"{r['name']},{r['phone']},{r['email']},extra,{r['id_no']}\n"
                                               for r in rows)
    (tmp_path / "r.csv").write_text(body, encoding="utf-8")
    report = scan_path(tmp_path / "r.csv", today=TODAY)
    assert {("phone", "cn_mobile", 25), ("email", "email", 25)} <= _found(report)
    assert report.rows == 26 and not any(f.detector == "cn_resident_id" for f in report.findings)


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-16", "utf-16-le", "utf-8-sig"])
def test_chinese_encodings_and_utf16(tmp_path, encoding):
    rows = _people()
    text = _csv([{"姓名": r["name"], "身份证号": r["id_no"], "手机号": r["phone"]} for r in rows])
    path = tmp_path / f"c-{encoding}.csv"
    path.write_bytes(text.encode(encoding))
    found = _found(scan_path(path, today=TODAY, limits=Limits(block_bytes=333)))
    assert {("身份证号", "cn_resident_id", 25), ("手机号", "cn_mobile", 25)} <= found


def test_gzip_and_zip_archives(tmp_path):
    text = _csv(_people()).encode()
    (tmp_path / "p.csv.gz").write_bytes(gzip.compress(text))
    assert _found(scan_path(tmp_path / "p.csv.gz", today=TODAY)) >= EXPECTED
    with zipfile.ZipFile(tmp_path / "p.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("export/people.csv", text)
        zf.writestr("export/readme.txt", "contact 13812345678")
    report = scan_path(tmp_path / "p.zip", today=TODAY)
    assert _found(report) >= EXPECTED
    assert {f.part for f in report.findings} == {"p.zip/export/people.csv", "p.zip/export/readme.txt"}


# --- bad input ----------------------------------------------------------------------------------

def _refused(path: Path, match: str, **kw) -> None:
    with pytest.raises(Invalid, match=match) as info:
        scan_path(path, today=TODAY, **kw)
    assert info.value.errors[0].field == "file"


def test_corrupt_files_get_clear_messages(tmp_path):
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"a,b\n1,2\n")[:-12] + b"garbage!")
    _refused(tmp_path / "bad.gz", "corrupt")
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04" + os.urandom(200))
    _refused(tmp_path / "bad.zip", "corrupt")
    (tmp_path / "bad.xlsx").write_bytes(b"not a workbook")
    _refused(tmp_path / "bad.xlsx", "not a readable XLSX")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1" + b"\x00" * 50)
    _refused(tmp_path / "bad.parquet", "not a readable Parquet")
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": 2}\n{"a": \n', encoding="utf-8")
    _refused(tmp_path / "bad.jsonl", "line 3 is not valid JSON")
    (tmp_path / "bad.json").write_text('[{"a": 1}, {"a": ]', encoding="utf-8")
    _refused(tmp_path / "bad.json", "invalid JSON")
    (tmp_path / "open.json").write_text('[{"a": 1}, {"a": 2}', encoding="utf-8")
    _refused(tmp_path / "open.json", "not closed")
    (tmp_path / "quote.csv").write_text('a,b\n"unclosed,1\n2,3\n', encoding="utf-8")
    _refused(tmp_path / "quote.csv", "inside a quoted field")
    (tmp_path / "gbk-then-junk.txt").write_bytes("中文".encode() + b"\xff\xfe\xfa" * 3)
    _refused(tmp_path / "gbk-then-junk.txt", "could not be decoded|not text")
    _refused(tmp_path / "missing.csv", "cannot be read")


def test_a_record_without_end_is_bounded(tmp_path):
    (tmp_path / "long.csv").write_text('a,b\n"' + "x" * 5000, encoding="utf-8")
    _refused(tmp_path / "long.csv", "longer than", limits=Limits(block_bytes=256, max_record_bytes=2048))


def _bomb_text(mb: int) -> bytes:
    return b"id,phone\n" + b"1,13800000000\n" * (mb * 1024 * 1024 // 16)


def test_zip_bomb_is_refused_before_it_expands(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf, \
            zf.open("huge.csv", "w") as member:
        chunk = b"1,13800000000\n" * 65536
        for _ in range(300 * 1024 * 1024 // len(chunk)):
            member.write(chunk)
    assert path.stat().st_size < 3 * 1024 * 1024
    _refused(path, "zip bomb")
    xlsx = tmp_path / "bomb.xlsx"
    xlsx.write_bytes(path.read_bytes())
    _refused(xlsx, "zip bomb")


def test_gzip_bomb_is_cut_off_while_streaming(tmp_path):
    path = tmp_path / "bomb.csv.gz"
    with gzip.open(path, "wb", compresslevel=9) as fh:
        chunk = b"1,13800000000\n" * 65536
        for _ in range(60 * 1024 * 1024 // len(chunk)):
            fh.write(chunk)
    _refused(path, "zip bomb", limits=Limits(expansion_grace_bytes=8 * 1024 * 1024))


def test_a_10_gb_file_of_nothing_is_refused_at_once(tmp_path):
    """A sparse 10 GB file costs no disk; the scanner sniffs its first block and stops."""
    path = tmp_path / "huge.log"
    with path.open("wb") as fh:
        fh.truncate(10 * 1024**3)
    _refused(path, "binary")


MEMORY_PROBE = textwrap.dedent("""
    import sys
    from datetime import date
    from pathlib import Path
    from commonwatch.datasec.scanner import scan_path
    report = scan_path(Path(sys.argv[1]), today=date(2026, 11, 25))
    # This process's own peak (VmHWM): ru_maxrss would carry over a forking parent's peak.
    hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(report.rows, int(hwm.split()[1]) // 1024)
""")


def _write_log(path: Path, mb: int) -> None:
    rng = random.Random(7)
    block = ("\n".join(line for line, _e, _v in syn.labelled_lines(rng, 20_000)) + "\n").encode()
    with path.open("wb") as fh:
        for _ in range(mb * 1024 * 1024 // len(block) + 1):
            fh.write(block)


@pytest.mark.slow
def test_memory_stays_flat_as_the_file_grows(tmp_path):
    """Peak RSS scanning 300 MB is about that of 30 MB: the scanner streams (no timing asserted)."""
    small, large = tmp_path / "small.log", tmp_path / "large.log"
    _write_log(small, 30)
    _write_log(large, 300)
    peaks = {}
    for path in (small, large):
        out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path)], capture_output=True, text=True,
                             check=True, env={**os.environ, "POLARS_MAX_THREADS": "2"})
        rows, peak = map(int, out.stdout.split())
        assert rows > 0
        peaks[path.name] = peak
    print(f"peak RSS MB: {peaks}")
    assert peaks["large.log"] < peaks["small.log"] + 150, peaks
    assert peaks["large.log"] < 1024, peaks


def test_readers_yield_text_columns_only(tmp_path):
    df = pl.DataFrame({"n": [1, 2], "f": [1.5, 2.5], "s": ["a", "b"], "b": [b"x", b"y"],
                       "l": [[1, 2], [3]], "st": [{"x": 1}, {"x": 2}]})
    df.write_parquet(tmp_path / "t.parquet")
    frames = [f for _p, f in read_path(tmp_path / "t.parquet")]
    assert all(dt == pl.String for dt in frames[0].dtypes)
    assert set(frames[0].columns) == {"n", "f", "s", "l", "st.x"}


def test_zip_members_of_unsupported_kinds_are_named(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inner.zip", b"PK")
    (tmp_path / "outer.zip").write_bytes(buf.getvalue())
    _refused(tmp_path / "outer.zip", "inner.zip")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600), kind=st.sampled_from(["csv", "tsv", "json", "jsonl", "txt", "csv.gz", "zip"]))
@example(data=b"\r\x01", kind="csv")  # a carriage return inside the header line
@example(data=b"\x01\n,", kind="csv")  # a first row wider than the header
def test_any_bytes_either_scan_or_are_refused_with_a_reason(tmp_path, data, kind):
    """Fuzzed input: a report or an Invalid naming the file, never another exception."""
    path = tmp_path / f"fuzz.{kind}"
    if kind == "csv.gz":
        data = gzip.compress(data) if data[:1] != b"!" else data
    path.write_bytes(data)
    try:
        report = scan_path(path, today=TODAY)
    except Invalid as exc:
        assert exc.errors[0].field == "file" and exc.errors[0].reason
    else:
        assert report.rows >= 0


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.dictionaries(st.text(max_size=8), st.one_of(st.none(), st.integers(), st.floats(),
                                                                  st.text(max_size=20), st.lists(st.integers())),
                                max_size=4), max_size=12))
def test_any_json_records_scan(tmp_path, records):
    (tmp_path / "r.json").write_text(json.dumps(records), encoding="utf-8")
    (tmp_path / "r.jsonl").write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    for name in ("r.json", "r.jsonl"):
        try:
            scan_path(tmp_path / name, today=TODAY)
        except Invalid as exc:
            assert exc.errors[0].reason
