"""A feed described by a declarative mapping file, so an operator adds a feed without code.

The mapping file (YAML)::

    name: example-c2            # becomes feed.name
    provider: Example CERT      # feed.provider
    format: csv                 # csv | json | jsonl
    separator: ","              # csv only
    comment: "#"                # csv: lines starting with this are skipped
    header: null                # csv: a list of column names when the file has no header row
    records: data               # json: the key of the list of records (omit for a top-level list)
    columns:                    # feed column -> any IntelMQ harmonisation field, or extra.*
      ip: source.ip
      seen: time.source
    constants:                  # fields with a fixed value
      classification.type: c2-server
    keep_unmapped: true         # unmapped columns go to extra.<column> (default true)

Used on the command line as ``--feed generic:PATH``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from commonwatch.errors import Invalid
from commonwatch.events.schema import BY_NAME, INTELMQ_FIELDS
from commonwatch.feeds.abusech import _objects_batch
from commonwatch.feeds.base import ParsedBatch, Shape, Source
from commonwatch.feeds.common import iter_csv, iter_json_lines, load_json_document, records_frame, rename_to_fields
from commonwatch.i18n import _

FORMATS = ("csv", "json", "jsonl")


def _known_field(name: str) -> bool:
    """A commonwatch field, any IntelMQ harmonisation field (kept in ``extra`` under its own name
    when the store has no column for it), or ``extra.<anything>``."""
    return (name in BY_NAME or name in INTELMQ_FIELDS
            or name.startswith(("extra.", "source.", "destination.", "classification.", "feed.")))


def with_url_scheme(frame: pl.DataFrame) -> pl.DataFrame:
    """A ``*.url`` value without ``://`` gets ``http://`` in front, as IntelMQ's generic CSV parser
    does (its ``default_url_protocol``)."""
    urls = [c for c in frame.columns if c.endswith(".url") and frame.schema[c] == pl.String]
    return frame.with_columns([
        pl.when(pl.col(c).is_null() | pl.col(c).str.contains("://", literal=True)).then(pl.col(c))
        .otherwise(pl.lit("http://") + pl.col(c)).alias(c) for c in urls])


def load_mapping(path: Path) -> dict[str, Any]:
    """Read and validate a mapping file; :class:`Invalid` names the file and the problem."""
    origin = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise Invalid(origin, _("cannot be read as YAML: {error}").format(error=exc)) from None
    if not isinstance(data, dict):
        raise Invalid(origin, _("must be a mapping"))
    if not isinstance(data.get("name"), str) or not data["name"].strip():
        raise Invalid(origin, _("needs a feed 'name'"))
    if data.get("format", "csv") not in FORMATS:
        raise Invalid(origin, _("format must be one of {formats}").format(formats=", ".join(FORMATS)))
    columns = data.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise Invalid(origin, _("needs 'columns': feed column -> field"))
    for col, target in columns.items():
        if not isinstance(target, str) or not _known_field(target):
            raise Invalid(origin, _("column {col}: {target} is not a known field").format(col=col, target=target))
    constants = data.get("constants") or {}
    if not isinstance(constants, dict):
        raise Invalid(origin, _("'constants' must be a mapping"))
    for key in constants:
        if not _known_field(str(key)):
            raise Invalid(origin, _("constant {key} is not a known field").format(key=key))
    header = data.get("header")
    if header is not None and not (isinstance(header, list) and all(isinstance(h, str) for h in header)):
        raise Invalid(origin, _("'header' must be a list of column names"))
    return data


class GenericParser:
    description = "Any CSV/JSON feed, driven by a column-mapping file (generic:PATH)"

    def __init__(self, mapping_file: Path):
        self.spec = load_mapping(mapping_file)
        self.name = f"generic:{mapping_file}"
        self.constants = {"feed.name": self.spec["name"], "feed.provider": str(self.spec.get("provider", "")),
                          **{str(k): str(v) for k, v in (self.spec.get("constants") or {}).items()}}
        self.mapping = {str(k): v for k, v in self.spec["columns"].items()}
        self.keep = bool(self.spec.get("keep_unmapped", True))

    def parse(self, source: Source) -> Iterator[ParsedBatch]:
        fmt = self.spec.get("format", "csv")
        if fmt == "csv":
            for frame, bad, notes, header in iter_csv(source, sep=str(self.spec.get("separator", ",")),
                                                       comment=self.spec.get("comment"),
                                                       header=self.spec.get("header")):
                yield ParsedBatch(self._rename(frame), bad, notes,
                                  Shape(str(self.spec["name"]), tuple(header or ()), tuple(self.mapping)))
        elif fmt == "jsonl":
            for frame, bad, notes in iter_json_lines(source):
                yield ParsedBatch(self._rename(frame), bad, notes)
        else:
            data = load_json_document(source)
            key = self.spec.get("records")
            if data is None:
                yield ParsedBatch(self._rename(records_frame([], [])), [], [_("the file is empty")])
                return
            items = data.get(key) if key and isinstance(data, dict) else data
            if not isinstance(items, list):
                raise Invalid("file", _("expected a list of records{where}").format(
                    where=f" under '{key}'" if key else ""))
            b = _objects_batch(items, self.mapping, self.constants)
            if not self.keep:
                b.frame = b.frame.select([c for c in b.frame.columns if not c.startswith("extra.")
                                          or c in self.mapping.values()])
            b.frame = with_url_scheme(b.frame)
            yield b

    def _rename(self, frame):
        return with_url_scheme(rename_to_fields(frame, self.mapping, keep_extra=self.keep, constants=self.constants))
