"""Bad input: each case gives correct events or quarantined records with a reason and a clear
summary; never a crash, never a silent drop."""

from __future__ import annotations

import gzip
import io
import zipfile
from datetime import timedelta

import pytest
from sqlalchemy import select

from commonwatch.db import make_sessionmaker
from commonwatch.pipeline.models import QuarantinedRecord
from tests.pipeline.helpers import events, ingest, seed_registry

HEADER = '"timestamp","ip","port","hostname","tag","asn","geo"\n'
ROW = '"2026-11-24 0{h}:00:00","198.51.100.{i}",23,"h{i}.example","telnet",64500,"CN"\n'


def rows(n: int, start: int = 1) -> str:
    return "".join(ROW.format(h=i % 10, i=start + i) for i in range(n))


@pytest.fixture
def world(engine, clock):
    return seed_registry(engine, clock)


def quarantined(engine) -> list[QuarantinedRecord]:
    with make_sessionmaker(engine)() as session:
        return list(session.scalars(select(QuarantinedRecord).order_by(QuarantinedRecord.line)))


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_truncated_file_keeps_the_whole_rows(engine, clock, world, tmp_path):
    text = (HEADER + rows(5)).encode()
    path = write(tmp_path, "2026-11-24-scan_telnet-cut.csv", text[:-25])  # cut inside the last row
    run = ingest(engine, path, "shadowserver", clock)
    assert (run.events_stored, run.quarantined) == (4, 1)
    [bad] = quarantined(engine)
    assert bad.line == 6 and ("fields" in bad.reason or "quote" in bad.reason)
    assert bad.raw.startswith('"2026-11-24 04:00:00"')


def test_wrong_column_counts(engine, clock, world, tmp_path):
    text = HEADER + rows(2) + '"2026-11-24 05:00:00","198.51.100.50",23\n' + \
        '"2026-11-24 05:00:00","198.51.100.51",23,"h","telnet",64500,"CN","extra","more"\n' + rows(1, 60)
    run = ingest(engine, write(tmp_path, "2026-11-24-scan_telnet-x.csv", text.encode()), "shadowserver", clock)
    assert (run.events_stored, run.quarantined) == (3, 2)
    reasons = [q.reason for q in quarantined(engine)]
    assert reasons == ["3 fields where the header has 7", "9 fields where the header has 7"]


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-16", "utf-8-sig"])
def test_chinese_encodings_are_detected(engine, clock, world, tmp_path, encoding):
    text = HEADER + '"2026-11-24 01:00:00","198.51.100.7",23,"主机.例子","远程登录",64500,"CN"\n' + \
        '"2026-11-24 01:00:00","198.51.100.8",23,"服务器","北京联通",64500,"CN"\n'
    run = ingest(engine, write(tmp_path, f"2026-11-24-scan_telnet-{encoding}.csv", text.encode(encoding)),
                 "shadowserver", clock)
    assert run.events_stored == 2 and run.quarantined == 0
    stored = events(engine)
    assert stored[0].source_reverse_dns == "主机.例子" and stored[1].extra["tag"] == "北京联通"


def test_invalid_addresses_and_odd_or_future_times(engine, clock, world, tmp_path):
    text = HEADER + "".join(f'"{t}","{ip}",23,"","telnet",64500,"CN"\n' for t, ip in [
        ("2026-11-24 01:00:00", "198.51.100.300"),       # octet too large
        ("2026-11-24 01:00:00", "198.51.100"),           # too short
        ("2026-11-24T01:00:00+08:00", "198.51.100.20"),  # offset: becomes 2026-11-23 17:00 UTC
        ("1764000000", "198.51.100.21"),                 # epoch seconds
        ("2026/11/24 01:00:00", "198.51.100.22"),
        ("24 Nov 2026 at noon", "198.51.100.23"),        # no known format
        ("2030-01-01 00:00:00", "198.51.100.24"),        # in the future
        ("1970-01-01 00:00:00", "198.51.100.25"),        # before feeds existed
        ("", "198.51.100.26"),
        ("2026-11-24 01:00:00", "2001:db8:100::1"),
        ("2026-11-24 01:00:00", "::ffff:198.51.100.27"),  # IPv4-mapped: stored as IPv4
    ])
    run = ingest(engine, write(tmp_path, "2026-11-24-scan_telnet-odd.csv", text.encode()), "shadowserver", clock)
    assert (run.events_stored, run.quarantined) == (5, 6)
    by_line = {q.line: q.reason for q in quarantined(engine)}
    assert by_line[2] == by_line[3] == "source.ip is not an IPv4 or IPv6 address"
    assert "not a date and time in a known format" in by_line[7]
    assert "in the future" in by_line[8] and "before 1990" in by_line[9]
    assert by_line[10] == "time.source is missing"
    stored = {e.source_ip: e for e in events(engine)}
    assert stored["198.51.100.20"].time_source.hour == 17
    assert stored["198.51.100.21"].time_source.year == 2025
    assert stored["198.51.100.27"].source_ip_bin[-4:] == bytes([198, 51, 100, 27])
    assert stored["2001:db8:100::1"].org_id is not None


def test_megabyte_lines(engine, clock, world, tmp_path):
    huge = "A" * 2_000_000
    text = HEADER + f'"2026-11-24 01:00:00","198.51.100.7",23,"h","{huge}",64500,"CN"\n' + rows(2, 10)
    run = ingest(engine, write(tmp_path, "2026-11-24-scan_telnet-big.csv", text.encode()), "shadowserver", clock)
    assert (run.events_stored, run.quarantined) == (2, 1)
    [bad] = quarantined(engine)
    assert bad.line == 2 and "larger than" in bad.reason
    url = "http://198.51.100.9/" + "x" * 1_500_000
    run = ingest(engine, write(tmp_path, "list.txt", f"{url}\nhttp://198.51.100.8/ok\n".encode()), "openphish", clock)
    assert (run.events_stored, run.quarantined) == (1, 1)


@pytest.mark.parametrize(("data", "note"), [(b"", "the file is empty"),
                                            (HEADER.encode(), "the file has a header but no data rows")])
def test_empty_and_header_only(engine, clock, world, tmp_path, data, note):
    run = ingest(engine, write(tmp_path, "2026-11-24-scan_telnet-empty.csv", data), "shadowserver", clock)
    assert run.status == "done" and run.rows_read == 0 and run.events_stored == 0
    assert note in run.notes


def test_gzip_and_zip(engine, clock, world, tmp_path):
    gz = write(tmp_path, "2026-11-24-scan_telnet-a.csv.gz", gzip.compress((HEADER + rows(3)).encode()))
    run = ingest(engine, gz, "shadowserver", clock)
    assert run.events_stored == 3
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("2026-11-24-scan_telnet-b.csv", HEADER + rows(2, 100))
        z.writestr("2026-11-24-scan_rdp-c.csv", HEADER + rows(2, 200))
    run = ingest(engine, write(tmp_path, "reports.zip", buf.getvalue()), "shadowserver", clock)
    assert run.events_stored == 4
    kinds = {e.classification_identifier for e in events(engine)}
    assert {"open-telnet", "open-rdp"} <= kinds


def test_unreadable_documents_are_quarantined_whole(engine, clock, world, tmp_path):
    run = ingest(engine, write(tmp_path, "tf.json", b'{"1": [{"ioc_value": "198.51.100.1:80", "ioc_ty'), "threatfox",
                 clock)
    assert run.status == "done" and run.quarantined == 1
    [bad] = quarantined(engine)
    assert "not valid JSON" in bad.reason and bad.raw.startswith('{"1"')
    run = ingest(engine, write(tmp_path, "bad.zip", b"PK\x03\x04garbage"), "shadowserver", clock)
    assert run.quarantined == 0 and run.status == "failed" and "zip" in run.error


def test_binary_garbage_never_crashes(engine, clock, world, tmp_path):
    blob = bytes(range(256)) * 64
    for feed in ("shadowserver", "urlhaus", "openphish", "spamhaus-drop", "intelmq", "phishtank"):
        run = ingest(engine, write(tmp_path, f"junk-{feed}.csv", blob), feed, clock)
        assert run.status in ("done", "failed")
        assert run.rows_read == run.events_stored + run.duplicates + run.quarantined
        clock.advance(timedelta(minutes=1))


def test_decompression_is_bounded(tmp_path, clock):
    from commonwatch.errors import Invalid
    from commonwatch.feeds.collect import sources_from_path

    bomb = write(tmp_path, "bomb.csv.gz", gzip.compress(b"0" * 5_000_000))
    with pytest.raises(Invalid, match="larger than the limit of 100000 bytes"):
        for source in sources_from_path(bomb, clock.now(), limit=100_000):
            while source.stream.read(65536):
                pass
