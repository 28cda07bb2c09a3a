"""One chart definition per indicator result: a Vega-Lite spec, rendered in process and offline
by vl-convert (a Rust build of Vega that ships in its wheel) to SVG for the pages and to PNG for
the PDF. Nothing is fetched: the spec carries its data inline.

Colours are the Okabe-Ito palette, distinguishable with the common colour-vision deficiencies;
"other" is grey. An empty period is an empty chart carrying a message, never an error.
"""

from __future__ import annotations

import json
import re
import threading
from functools import lru_cache
from typing import Any

from commonwatch import fonts
from commonwatch.reports.indicators import Result

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
OTHER = "#999999"
WIDTH, HEIGHT = 560, 220
_lock = threading.Lock()  # vl-convert's engine is one per process


def spec(result: Result, *, message: str = "", labels: dict[str, str] | None = None,
         width: int = WIDTH) -> dict[str, Any]:
    """The Vega-Lite spec of ``result``'s chart; ``message`` is shown over an empty one."""
    ind = result.indicator
    labels = labels or {}
    base: dict[str, Any] = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "width": width, "height": HEIGHT, "background": "white",
        # The shipped CJK font by name: vl-convert has it registered, pages serve it by @font-face.
        "config": {"font": fonts.FAMILY, "axis": {"labelFontSize": 11, "titleFontSize": 11},
                   "legend": {"labelFontSize": 11, "orient": "bottom", "columns": 4}, "view": {"stroke": None}},
    }
    rows = result.data.to_dicts() if not result.absent else []
    if not rows or result.empty:
        return {**base, "data": {"values": [{"m": message}]}, "mark": {"type": "text", "fontSize": 14,
                                                                        "color": "#555"},
                "encoding": {"text": {"field": "m"}}}
    x = ind.x if ind.x in result.data.columns else result.data.columns[0]
    y = "n"
    enc: dict[str, Any] = {}
    if ind.chart == "stacked" or ind.color:
        color = ind.color if ind.color in result.data.columns else None
        enc["x"] = {"field": x, "type": "ordinal", "title": labels.get(x, x),
                    "axis": {"labelAngle": -45 if x == "when" else 0, "labelOverlap": True}}
        enc["y"] = {"field": y, "type": "quantitative", "title": labels.get(y, y), "stack": True}
        if color:
            domain = sorted({str(r[color]) for r in rows})
            palette = [OTHER if v in {labels.get("other", "other"), "other"} else OKABE_ITO[i % len(OKABE_ITO)]
                       for i, v in enumerate(domain)]
            enc["color"] = {"field": color, "type": "nominal", "title": labels.get(color, color),
                            "scale": {"domain": domain, "range": palette}}
        mark: dict[str, Any] = {"type": "bar"}
    else:
        enc["y"] = {"field": x, "type": "nominal", "title": labels.get(x, x), "sort": "-x"}
        enc["x"] = {"field": y, "type": "quantitative", "title": labels.get(y, y)}
        mark = {"type": "bar", "color": OKABE_ITO[0]}
        base["height"] = max(60, 22 * len(rows))
    enc["tooltip"] = [{"field": c} for c in result.data.columns]
    return {**base, "data": {"values": rows}, "mark": mark, "encoding": enc}


@lru_cache(maxsize=512)
def _svg(text: str) -> str:
    import vl_convert

    fonts.register_for_charts()
    with _lock:
        return vl_convert.vegalite_to_svg(json.loads(text))


@lru_cache(maxsize=128)
def _png(text: str) -> bytes:
    import vl_convert

    fonts.register_for_charts()
    with _lock:
        return vl_convert.vegalite_to_png(json.loads(text), scale=2)


def svg(chart: dict[str, Any]) -> str:
    """The chart as inline SVG that scales down to a narrow screen."""
    out = _svg(json.dumps(chart, sort_keys=True, default=str, ensure_ascii=False))
    # keep the viewBox, let CSS size it (a phone at 375 px shows the whole chart)
    return re.sub(r'<svg([^>]*?) width="([\d.]+)" height="([\d.]+)"', r'<svg\1 width="100%" data-w="\2" data-h="\3"',
                  out, count=1)


def png(chart: dict[str, Any]) -> bytes:
    return _png(json.dumps(chart, sort_keys=True, default=str, ensure_ascii=False))
