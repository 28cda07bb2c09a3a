"""Statistics and situation reports: indicators defined once, hourly and daily rollups kept at
ingest, dashboards with charts (Vega-Lite, rendered offline), weekly / monthly / annual reports."""
