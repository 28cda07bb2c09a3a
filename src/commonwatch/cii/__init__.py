"""CII protection: operators' systems (MLPS level, filing, assessments, inspections) and their
asset inventory (software and hardware identified by CPE 2.3 and purl)."""
