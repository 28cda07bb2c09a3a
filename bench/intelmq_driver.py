"""Runs inside IntelMQ's own virtual environment (bench/.venvs/intelmq): IntelMQ 3.5's Shadowserver
parser, taxonomy, MaxMind GeoIP and ASN lookup experts, and the file output, chained in process with
IntelMQ's library mode (no broker between bots: the most favourable setting for IntelMQ).

Usage: intelmq_driver.py CSV ROOT_DIR MMDB [PYASN_DAT]; prints a JSON line with events and seconds.
"""

import base64
import json
import os
import sys
import time

csv_path, root, mmdb = sys.argv[1], sys.argv[2], sys.argv[3]
pyasn_dat = sys.argv[4] if len(sys.argv) > 4 else ""
os.environ["INTELMQ_ROOT_DIR"] = root

from intelmq.bots.experts.taxonomy.expert import TaxonomyExpertBot  # noqa: E402
from intelmq.bots.outputs.file.output import FileOutputBot  # noqa: E402
from intelmq.bots.parsers.shadowserver.parser import ShadowserverParserBot  # noqa: E402
from intelmq.lib.bot import BotLibSettings  # noqa: E402

chain = [
    ShadowserverParserBot("parser", settings=BotLibSettings | {"logging_level": "ERROR"}),
    TaxonomyExpertBot("taxonomy", settings=BotLibSettings | {"logging_level": "ERROR"}),
]
try:
    from intelmq.bots.experts.maxmind_geoip.expert import GeoIPExpertBot

    chain.append(GeoIPExpertBot("geoip", settings=BotLibSettings | {"logging_level": "ERROR", "database": mmdb,
                                                                    "overwrite": False}))
except Exception as exc:
    print(f"geoip expert unavailable: {exc}", file=sys.stderr)
if pyasn_dat:
    from intelmq.bots.experts.asn_lookup.expert import ASNLookupExpertBot

    chain.append(ASNLookupExpertBot("asn", settings=BotLibSettings | {"logging_level": "ERROR",
                                                                      "database": pyasn_dat, "overwrite": False}))
out_file = os.path.join(root, "events.txt")
chain.append(FileOutputBot("output", settings=BotLibSettings | {"logging_level": "ERROR", "file": out_file,
                                                                 "hierarchical_output": False}))

CHUNK_LINES = 5000  # Shadowserver mails and API downloads arrive as reports of this order
with open(csv_path, "rb") as fh:
    header = fh.readline()
    lines = fh.readlines()

start = time.perf_counter()

for i in range(0, len(lines), CHUNK_LINES):
    raw = header + b"".join(lines[i:i + CHUNK_LINES])
    report = {"__type": "Report", "feed.name": "Shadowserver", "extra.file_name": os.path.basename(csv_path),
              "raw": base64.b64encode(raw).decode()}
    msgs = chain[0].process_message(report)["output"]
    for bot in chain[1:]:
        msgs = bot.process_message(*msgs).get("output", []) if msgs else []
seconds = time.perf_counter() - start
with open(out_file, "rb") as fh:
    events = sum(1 for _ in fh)
print(json.dumps({"events": events, "seconds": seconds, "bots": [type(b).__name__ for b in chain]}))
