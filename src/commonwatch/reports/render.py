"""A situation report as a bilingual PDF (``commonwatch.pdf``): every heading and sentence in
English and Chinese, each indicator's chart (the same Vega-Lite definition as on the page, as PNG),
its table, and the indicator key and period it comes from."""

from __future__ import annotations

import dataclasses

from commonwatch.i18n import _, use_language
from commonwatch.labels import label
from commonwatch.pdf import PdfDocument, Section, render_pdf
from commonwatch.reports import charts
from commonwatch.reports import indicators as ind
from commonwatch.reports import services as svc


def both(fn) -> str:
    """``fn()`` in English and in Chinese, joined (once when they are the same)."""
    with use_language("en"):
        en = fn()
    with use_language("zh-CN"):
        zh = fn()
    return en if en == zh else f"{en} / {zh}"


def _both_labels(code: str, kind: str) -> str:
    return both(lambda: label(code, kind))


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def report_pdf(report: svc.Report) -> bytes:
    p = report.period
    with use_language("en"):
        summary_en = svc.summarise(report.results, report.before)
    with use_language("zh-CN"):
        summary_zh = svc.summarise(report.results, report.before)
    sections = [Section(both(lambda: _("Summary")),
                        paragraphs=[*summary_en, *summary_zh] or [both(lambda: _("No figures for this period."))],
                        facts=[(both(lambda: _("Period")), f"{p.label()} ({p.tz})"),
                               (both(lambda: _("Compared with")), report.previous.label())])]
    for r in report.results:
        i = r.indicator
        paragraphs = [f"{i.counts_en} / {i.counts_zh}"]
        if r.absent:
            paragraphs.append(both(lambda r=r: _("not available: the “{capability}” capability is not installed")
                                   .format(capability=label(r.indicator.source, "capability"))))
        elif r.empty:
            paragraphs.append(both(lambda: _("No data for this period")))
        if r.note:
            paragraphs.append(r.note)
        images = []
        shown = dataclasses.replace(r, data=ind.labelled(r.data, say=_both_labels, indicator=i.key))
        if not r.absent and not r.empty and i.chart not in ("figure", "table"):
            # The charts speak both languages like the text: the shipped CJK font draws them.
            labels = {c: both(lambda c=c: _(ind.COLUMN_LABELS[c])) for c in ind.COLUMN_LABELS}
            images.append(charts.png(charts.spec(shown, labels=labels)))
        facts = []
        if r.value is not None:
            facts.append((both(lambda: _("Figure")), f"{r.value:,.2f}".rstrip("0").rstrip(".") + f" {i.unit}"))
        facts.append((both(lambda: _("Source")), f"{i.key} · {i.source} · {p.start.isoformat()} – "
                                                 f"{p.end.isoformat()} {p.tz}"))
        table = None
        if not r.absent and r.data.height and r.data.columns != ["n"]:
            header = [both(lambda c=c: _(ind.COLUMN_LABELS.get(c, c))) for c in r.data.columns]
            table = [header, *[[_cell(v) for v in row] for row in shown.data.rows()[:60]]]
        sections.append(Section(f"{i.en} / {i.zh}", paragraphs=paragraphs, facts=facts, table=table, images=images))
    with use_language("en"):
        title_en = report.title
    with use_language("zh-CN"):
        title_zh = report.title
    doc = PdfDocument(title=f"{title_en} / {title_zh}", subtitle=f"{p.label()} · {p.tz}", sections=sections,
                      footer="commonwatch", generated_at=report.generated_at)
    return render_pdf(doc)
