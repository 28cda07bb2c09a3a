"""Structured logs: one JSON object per line with the request's fields."""

import json
import logging

from commonwatch.observability import JsonFormatter


def test_json_log_lines_carry_extra_fields():
    record = logging.LogRecord("commonwatch.http", logging.INFO, __file__, 1, "request", None, None)
    record.path, record.status, record.ms = "/healthz", 200, 1.5
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "request" and line["status"] == 200 and line["path"] == "/healthz"
    assert line["level"] == "info" and line["at"].endswith("+00:00")


def test_requests_are_logged(anon, caplog):
    with caplog.at_level(logging.INFO, logger="commonwatch.http"):
        anon.get("/healthz")
    rec = next(r for r in caplog.records if r.name == "commonwatch.http")
    assert rec.path == "/healthz" and rec.status == 200 and rec.request_id
