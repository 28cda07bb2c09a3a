"""Runs inside bench/.venvs/presidio: Presidio's pattern recognizers over a corpus, line by line.

No NLP engine and no spaCy model: the recognizers are called directly with ``nlp_artifacts=None``
(the path PatternRecognizer takes when no NLP results exist), so nothing is downloaded. The
e-mail recognizer's public-suffix lookup is pinned to tldextract's bundled snapshot (offline).
The first N lines (third argument) are scanned once untimed first, as a warm-up.
Prints one JSON line: wall and CPU seconds spent and, per line, the entity types found.
"""

import json
import sys
import time

import tldextract
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
)
from presidio_analyzer.predefined_recognizers.generic import email_recognizer

email_recognizer.tldextract = type("Offline", (), {"extract": staticmethod(
    tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None))})

RECOGNIZERS = [
    (CreditCardRecognizer(), "CREDIT_CARD"),
    (EmailRecognizer(), "EMAIL_ADDRESS"),
    (IpRecognizer(), "IP_ADDRESS"),
    (IbanRecognizer(), "IBAN_CODE"),
    (PhoneRecognizer(supported_regions=("CN",)), "PHONE_NUMBER"),
]


def main() -> None:
    path, out = sys.argv[1], sys.argv[2]
    warm_up = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    for line in lines[:warm_up]:  # untimed: compiled patterns, phonenumbers' lazily loaded metadata
        for recognizer, entity in RECOGNIZERS:
            recognizer.analyze(line, [entity], None)
    started, cpu_started = time.perf_counter(), time.process_time()
    found: list[list[str]] = []
    for line in lines:
        types = set()
        for recognizer, entity in RECOGNIZERS:
            if recognizer.analyze(line, [entity], None):
                types.add(entity)
        found.append(sorted(types))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(found, fh)
    print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu, "lines": len(lines)}))


if __name__ == "__main__":
    main()
