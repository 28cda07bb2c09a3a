"""Reports from partner CERTs: read a mail (or a bare document), check its OpenPGP signature against
the partner's keys, parse IODEF v2 JSON (RFC 8727), XARF v4, ARF (RFC 5965) or plain text into rows
named with harmonisation fields, and hand them to the feed pipeline's stages (``ingest_sources``), so
matching, deduplication and quarantine are those of every feed. A report that cannot be read is held
with its reason and its raw bytes; the same bytes arriving twice are taken once (``digest``).
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import io
import json
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from commonwatch.clock import Clock
from commonwatch.constituency.models import Contact, Organisation, OrgKind
from commonwatch.cooperation.models import InboundReport
from commonwatch.feeds.base import ParsedBatch, Source
from commonwatch.feeds.common import records_frame
from commonwatch.textio import decode_bytes, strip_control_text

FEED = "partner-reports"
#: IODEF Impact/Assessment words and XARF categories/types -> RSIT classification.type
_TYPES = {
    "spam": "spam", "phishing": "phishing", "ddos": "ddos", "dos": "ddos", "malware": "infected-system",
    "botnet": "infected-system", "c2": "c2-server", "scan": "scanner", "scanner": "scanner",
    "login-attempts": "brute-force", "brute-force": "brute-force", "defacement": "compromised",
    "compromised": "compromised", "infected-system": "infected-system", "malware-distribution": "malware-distribution",
}
_IP = re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")
_URL = r"https?://[^\s<>\"']+"


class ReportError(Exception):
    """Why a report was held."""


@dataclass
class Parsed:
    format: str
    records: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


# --- formats ---------------------------------------------------------------------------------------

def _type(value: Any) -> str:
    text = str(value or "").strip().lower()
    return _TYPES.get(text, "undetermined")


def parse_iodef_json(doc: Any) -> Parsed:
    """IODEF v2 in its JSON binding (RFC 8727): IODEF-Document → Incident[] → EventData[] → Flow[] →
    System[] → Node (Address, DomainData)."""
    if not isinstance(doc, dict):
        raise ReportError("IODEF: the document is not a JSON object")
    root = doc.get("IODEF-Document", doc)
    incidents = root.get("Incident") if isinstance(root, dict) else None
    if isinstance(incidents, dict):
        incidents = [incidents]
    if not isinstance(incidents, list) or not incidents:
        raise ReportError("IODEF: IODEF-Document has no Incident")
    out: list[dict[str, Any]] = []
    for i, inc in enumerate(incidents):
        if not isinstance(inc, dict):
            raise ReportError(f"IODEF: Incident[{i}] is not an object")
        iid = inc.get("IncidentID")
        ident = iid.get("id") if isinstance(iid, dict) else iid
        if not ident:
            raise ReportError(f"IODEF: Incident[{i}] lacks IncidentID")
        if not inc.get("ReportTime") and not inc.get("GenerateTime"):
            raise ReportError(f"IODEF: Incident[{i}] lacks ReportTime")
        when = inc.get("DetectTime") or inc.get("StartTime") or inc.get("ReportTime") or inc.get("GenerateTime")
        impacts = []
        for a in inc.get("Assessment") or []:
            for key in ("Impact", "SystemImpact", "BusinessImpact"):
                for imp in (a.get(key) or []) if isinstance(a, dict) else []:
                    impacts.append(imp.get("type") if isinstance(imp, dict) else imp)
        ctype = _type(impacts[0] if impacts else inc.get("purpose"))
        for ev in inc.get("EventData") or []:
            for flow in (ev.get("Flow") or []) if isinstance(ev, dict) else []:
                for system in (flow.get("System") or []) if isinstance(flow, dict) else []:
                    if not isinstance(system, dict) or system.get("category", "source") != "source":
                        continue
                    nodes = system.get("Node") or {}
                    nodes = nodes if isinstance(nodes, list) else [nodes]
                    for node in nodes:
                        addrs = node.get("Address") or []
                        addrs = addrs if isinstance(addrs, list) else [addrs]
                        domains = node.get("DomainData") or []
                        domains = domains if isinstance(domains, list) else [domains]
                        row = {"time.source": when, "classification.type": ctype, "extra.report_id": str(ident)}
                        for a in addrs:
                            value = a.get("value") if isinstance(a, dict) else a
                            if value:
                                row["source.ip"] = str(value)
                                break
                        for d in domains:
                            name = d.get("Name") if isinstance(d, dict) else d
                            if name:
                                row["source.fqdn"] = str(name)
                                break
                        if "source.ip" in row or "source.fqdn" in row:
                            out.append(row)
    if not out:
        raise ReportError("IODEF: no source system with an address or domain")
    return Parsed("iodef", out)


def parse_xarf(doc: Any) -> Parsed:
    """XARF v4 JSON (one report), or a list of them."""
    docs = doc if isinstance(doc, list) else [doc]
    out = []
    for i, d in enumerate(docs):
        if not isinstance(d, dict):
            raise ReportError(f"XARF: report {i + 1} is not a JSON object")
        missing = [k for k in ("xarf_version", "report_id", "timestamp", "reporter", "source_identifier",
                               "category") if not d.get(k)]
        if missing:
            raise ReportError(f"XARF: report {i + 1} lacks {', '.join(missing)}")
        if not str(d["xarf_version"]).startswith("4"):
            raise ReportError(f"XARF: report {i + 1} has xarf_version {d['xarf_version']}; 4.x is read")
        ident = str(d["source_identifier"])
        row = {"time.source": d["timestamp"], "classification.type": _type(d.get("type") or d["category"]),
               "extra.report_id": str(d["report_id"]), "extra.xarf_category": str(d["category"])}
        key = "source.ip" if _IP.fullmatch(ident) else "source.url" if ident.startswith("http") else "source.fqdn"
        row[key] = ident
        if d.get("source_port"):
            row["source.port"] = str(d["source_port"])
        out.append(row)
    return Parsed("xarf", out)


def parse_arf(msg: EmailMessage) -> Parsed:
    """ARF (RFC 5965): multipart/report with a message/feedback-report part."""
    fb = next((p for p in msg.walk() if p.get_content_type() == "message/feedback-report"), None)
    if fb is None:
        raise ReportError("ARF: no message/feedback-report part")
    payload = fb.get_payload()
    if isinstance(payload, list):
        text = "\n".join(str(p) for p in payload)
    else:
        text = fb.get_payload(decode=True).decode("utf-8", "replace") if fb.get_payload(decode=True) else str(payload)
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            fields.setdefault(key.strip().lower(), value.strip())
    missing = [k for k in ("feedback-type", "user-agent", "version") if k not in fields]
    if missing:
        raise ReportError(f"ARF: the feedback report lacks {', '.join(missing)}")
    ip = fields.get("source-ip", "")
    if not ip:
        raise ReportError("ARF: the feedback report names no Source-IP")
    ftype = fields["feedback-type"].lower()
    row = {"source.ip": ip, "time.source": _mail_date(fields.get("arrival-date") or fields.get("received-date")),
           "classification.type": {"abuse": "spam", "fraud": "phishing", "virus": "infected-system"}.get(
               ftype, "undetermined"), "extra.feedback_type": ftype}
    if fields.get("reported-uri"):
        row["source.url"] = fields["reported-uri"]
    return Parsed("arf", [row])


def _mail_date(value: str | None) -> str | None:
    """An RFC 5322 date as ISO 8601 (the pipeline's time format); None if absent or unreadable."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).isoformat()
    except (TypeError, ValueError):
        return value


def parse_text(text: str) -> Parsed:
    """Plain text: every IPv4 address and URL named in it, vectorised over the lines."""
    lines = pl.Series("l", text.splitlines() or [""])
    frame = pl.DataFrame({"l": lines}).with_row_index("n", offset=1)
    ips = frame.select("n", pl.col("l").str.extract_all(_IP.pattern).alias("v")).explode("v").drop_nulls()
    urls = frame.select("n", pl.col("l").str.extract_all(_URL).alias("v")).explode("v").drop_nulls()
    rows = ([{"source.ip": v, "classification.type": "undetermined"} for v in ips["v"].unique(maintain_order=True)]
            + [{"source.url": v, "classification.type": "undetermined"} for v in urls["v"].unique(maintain_order=True)])
    if not rows:
        raise ReportError("plain text: no IP address or URL found")
    return Parsed("text", rows)


def parse_document(data: bytes) -> Parsed:
    """A bare document: IODEF or XARF JSON, else plain text."""
    text = decode_bytes(data).strip()
    if text.startswith(("{", "[")):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReportError(f"JSON: line {exc.lineno}: {exc.msg}") from None
        probe = doc[0] if isinstance(doc, list) and doc else doc
        if isinstance(probe, dict) and ("IODEF-Document" in probe or "Incident" in probe):
            return parse_iodef_json(doc)
        if isinstance(probe, dict) and "xarf_version" in probe:
            return parse_xarf(doc)
        raise ReportError("JSON: neither IODEF (IODEF-Document) nor XARF (xarf_version)")
    return parse_text(text)


# --- mail --------------------------------------------------------------------------------------------

@dataclass
class Mail:
    raw: bytes
    origin: str  # imap | folder | api
    origin_ref: str = ""
    #: The partner a coordinator names when handing in an unsigned report through the API.
    partner_org_id: int | None = None


@dataclass
class Outcome:
    digest: str
    status: str  # ingested | held | duplicate
    reason: str = ""
    parsed: Parsed | None = None
    partner_org_id: int | None = None
    signature: str = "unsigned"
    signer: str = ""
    sender: str = ""
    subject: str = ""
    message_id: str = ""
    encrypted: bool = False


class PartnerKeys:
    """The partner CERTs' contact keys in a throw-away GnuPG home, to check signed mail."""

    def __init__(self, session: Session, clock: Clock, centre_home: Path | None = None):
        from commonwatch.notify.pgp import ClockedGPG, gpg_binary

        self._clock, self._centre_home = clock, centre_home
        self._centre: Any = None
        self._dir = tempfile.TemporaryDirectory(prefix="cw-partners-")
        Path(self._dir.name).chmod(0o700)
        self.gpg = ClockedGPG(clock, gpgbinary=gpg_binary() or "gpg", gnupghome=self._dir.name)
        self.by_fpr: dict[str, int] = {}
        self.by_email: dict[str, int] = {}
        rows = session.execute(select(Contact.email, Contact.pgp_key, Contact.pgp_fingerprint, Contact.org_id).join(
            Organisation, Organisation.id == Contact.org_id).where(Organisation.kind == OrgKind.PARTNER_CERT))
        for mail_addr, key, fpr, org_id in rows:
            self.by_email[mail_addr.lower()] = org_id
            self.by_email.setdefault("@" + mail_addr.lower().rpartition("@")[2], org_id)
            if key and fpr:
                self.gpg.import_keys(key)
                self.by_fpr[fpr.upper()] = org_id

    def verify(self, signed: bytes, signature: bytes) -> tuple[str, str]:
        """('good', fingerprint) or raises ReportError."""
        result, fpr = self.gpg.verify_detached(signed, signature)
        if result.valid and fpr in self.by_fpr:
            return "good", fpr
        if getattr(result, "status", "") == "no public key":
            raise ReportError(f"signed with an unknown key {result.key_id or ''}".strip())
        raise ReportError(f"the signature does not verify ({getattr(result, 'status', '') or 'bad signature'})")

    def verify_inline(self, armored: bytes) -> tuple[str, str, bytes]:
        """('good', fingerprint, the signed text) of an inline OpenPGP block (RFC 4880 section 7
        clearsigned text, or an ASCII-armoured signed message); or raises ReportError."""
        result = self.gpg.decrypt(armored)
        fpr = (getattr(result, "pubkey_fingerprint", None) or result.fingerprint or "").upper()
        if result.valid and fpr in self.by_fpr:
            return "good", fpr, bytes(result.data)
        status = getattr(result, "status", "") or ""
        if status == "no public key" or (result.valid and fpr not in self.by_fpr):
            raise ReportError(f"inline PGP: signed with an unknown key {result.key_id or ''}".strip())
        if status != "signature bad" and not result.key_id:
            raise ReportError(f"inline PGP: not a signed message the centre can read ({status or 'no signature'})")
        raise ReportError(f"inline PGP: the signature does not verify ({status or 'bad signature'})")

    def decrypt(self, data: bytes) -> tuple[bytes, str, str]:
        """(the plain text, ``good`` or ``unsigned``, the signer's fingerprint) of an OpenPGP message
        encrypted to the centre. It is decrypted in the centre's GnuPG home (the one notify signs with)
        without its signature checked there (``--unwrap`` keeps the signed message as it was); the
        signature inside is then checked against the partners' keys only, as a signed mail's is."""
        from commonwatch.notify.pgp import ClockedGPG, gpg_binary

        home = self._centre_home
        if home is None or not Path(home).is_dir():
            raise ReportError("encrypted to the centre, but the centre has no OpenPGP key here to decrypt it")
        if self._centre is None:
            self._centre = ClockedGPG(self._clock, gpgbinary=gpg_binary() or "gpg", gnupghome=str(home))
        result = self._centre.decrypt(data, extra_args=["--unwrap"])
        if not result.ok:
            raise ReportError(f"encrypted: the centre's key cannot decrypt it ({result.status or 'no secret key'})")
        inner = self.gpg.decrypt(bytes(result.data))
        fpr = (getattr(inner, "pubkey_fingerprint", None) or inner.fingerprint or "").upper()
        if inner.valid and fpr in self.by_fpr:
            return bytes(inner.data), "good", fpr
        status = getattr(inner, "status", "") or ""
        if status == "no public key" or (inner.valid and fpr not in self.by_fpr):
            raise ReportError(f"encrypted: signed inside with an unknown key {inner.key_id or ''}".strip())
        if inner.key_id or status == "signature bad":
            raise ReportError(f"encrypted: the signature inside does not verify ({status or 'bad signature'})")
        return bytes(inner.data), "unsigned", ""

    def close(self) -> None:
        self._dir.cleanup()


_INLINE = re.compile(rb"-----BEGIN PGP (?:SIGNED )?MESSAGE-----\r?\n.*?-----END PGP (?:SIGNATURE|MESSAGE)-----",
                     re.S)


_ARMOUR = re.compile(rb"-----BEGIN PGP MESSAGE-----\r?\n.*?-----END PGP MESSAGE-----", re.S)


def _armoured_encrypted(block: bytes) -> bool:
    """Whether an ASCII-armoured OpenPGP message starts with an encrypted session key packet
    (RFC 4880 section 5.1 and 5.3: tags 1 and 3), i.e. is encrypted rather than only signed."""
    lines = block.replace(b"\r\n", b"\n").split(b"\n")
    try:
        body = lines.index(b"", 1)
    except ValueError:
        return False
    text = b"".join(line.strip() for line in lines[body + 1:] if line and not line.startswith((b"=", b"-----")))
    try:
        first = base64.b64decode(text[:8] + b"=" * (-len(text[:8]) % 4))[0]
    except (ValueError, IndexError):
        return False
    if not first & 0x80:
        return False
    tag = first & 0x3F if first & 0x40 else (first >> 2) & 0x0F
    return tag in (1, 3)


def _encrypted_part(msg: EmailMessage) -> tuple[bytes, bool] | None:
    """(the OpenPGP message, whether it holds a MIME entity) of a mail encrypted to the centre: PGP/MIME
    (RFC 3156 section 4, ``multipart/encrypted``) or an armoured encrypted block in a part."""
    if msg.get_content_type() == "multipart/encrypted":
        parts = msg.get_payload()
        if not isinstance(parts, list) or len(parts) < 2:
            raise ReportError("multipart/encrypted: the encrypted part is missing")
        return parts[1].get_payload(decode=True) or b"", True
    for part in msg.walk():
        if part.is_multipart():
            continue
        found = _ARMOUR.search(part.get_payload(decode=True) or b"")
        if found and _armoured_encrypted(found.group(0)):
            return found.group(0), False
    return None


def _inline_block(msg: EmailMessage) -> bytes | None:
    """The first inline OpenPGP block (clearsigned or armoured message) in a part of the mail, if any:
    partners whose mailers do not speak PGP/MIME sign the body or the report file this way."""
    for part in msg.walk():
        if part.is_multipart() or part.get_content_type() == "message/feedback-report":
            continue
        found = _INLINE.search(part.get_payload(decode=True) or b"")
        if found:
            return found.group(0)
    return None


def _signed_parts(msg: EmailMessage, raw: bytes) -> tuple[bytes, bytes] | None:
    """(the signed part's bytes as sent, the detached signature) of a multipart/signed mail."""
    if msg.get_content_type() != "multipart/signed":
        return None
    boundary = msg.get_boundary()
    if not boundary:
        raise ReportError("multipart/signed without a boundary")
    body = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[-1]
    parts = re.split(rb"\n--" + re.escape(boundary.encode()) + rb"(?:--)?[ \t]*\n", b"\n" + body)
    if len(parts) < 3:
        raise ReportError("multipart/signed: cannot find the signed part")
    signed = parts[1].replace(b"\n", b"\r\n")
    sig_part = msg.get_payload()[1]
    return signed, sig_part.get_payload(decode=True) or b""


def _report_part(msg: EmailMessage) -> Parsed:
    if msg.get_content_type() == "multipart/signed":
        msg = msg.get_payload()[0]
    if msg.get_content_type() == "multipart/report" or any(
            p.get_content_type() == "message/feedback-report" for p in msg.walk()):
        return parse_arf(msg)
    json_part = text_part = None
    for part in msg.walk():
        ctype = part.get_content_type()
        name = (part.get_filename() or "").lower()
        if ctype in ("application/json", "application/iodef+json", "application/xarf+json") or name.endswith(
                ".json"):
            json_part = json_part or part
        elif ctype == "text/plain" and text_part is None:
            text_part = part
    part = json_part or text_part
    if part is None:
        raise ReportError("the mail holds no JSON report and no text part")
    return parse_document(part.get_payload(decode=True) or b"")


def read_mail(session: Session, keys: PartnerKeys, mail: Mail, max_bytes: int, now: datetime, *,
              check_duplicate: bool = True) -> Outcome:
    digest = hashlib.sha256(mail.raw).hexdigest()
    if check_duplicate and session.scalar(select(InboundReport.id).where(InboundReport.digest == digest)):
        return Outcome(digest, "duplicate")
    if len(mail.raw) > max_bytes:
        return Outcome(digest, "held", f"the mail is {len(mail.raw):,} bytes; at most {max_bytes:,} are read")
    try:
        msg = email.message_from_bytes(mail.raw, policy=email.policy.compat32)  # the fast parser
    except Exception as exc:
        return Outcome(digest, "held", f"not a mail: {exc}")
    out = Outcome(digest, "held", sender=parseaddr(str(msg.get("From", "")))[1].lower(),
                  subject=str(msg.get("Subject", ""))[:500], message_id=str(msg.get("Message-ID", ""))[:500])
    cleaned = strip_header_controls(out)
    try:
        body, raw, document = msg, mail.raw, None
        encrypted = _encrypted_part(msg)
        if encrypted is not None:
            plain, out.signature, out.signer = keys.decrypt(encrypted[0])
            out.encrypted = True
            if encrypted[1]:  # PGP/MIME: a MIME entity, perhaps signed inside (RFC 3156 section 6.1)
                body, raw = email.message_from_bytes(plain, policy=email.policy.compat32), plain
            else:
                document = plain
        if out.signature == "good":  # signed and encrypted in one OpenPGP message (RFC 3156 section 6.2)
            out.partner_org_id = keys.by_fpr[out.signer]
            out.parsed = parse_document(document) if document is not None else _report_part(body)
        else:
            signed = _signed_parts(body, raw) if document is None else None
            inline = _inline_block(body) if signed is None and document is None else None
            if signed is not None:
                out.signature, out.signer = keys.verify(*signed)
                out.partner_org_id = keys.by_fpr[out.signer]
            elif inline is not None:
                out.signature, out.signer, document = keys.verify_inline(inline)
                out.partner_org_id = keys.by_fpr[out.signer]
            else:
                out.partner_org_id = mail.partner_org_id or keys.by_email.get(out.sender) or keys.by_email.get(
                    "@" + out.sender.rpartition("@")[2])
                if out.partner_org_id is None:
                    raise ReportError(f"unsigned mail from {out.sender or 'nobody'}, who is not a partner contact")
            # Inline-signed: only the text under the signature is read, never what surrounds the block.
            out.parsed = parse_document(document) if document is not None else _report_part(body)
        # A report that gives no time of its own is dated by its mail (else by its arrival).
        sent = _mail_date(str(msg.get("Date", ""))) or now.isoformat()
        for record in out.parsed.records:
            if not record.get("time.source"):
                record["time.source"] = sent
    except ReportError as exc:
        out.reason = "; ".join([str(exc), *cleaned])
        return out
    out.status = "ingested"
    out.reason = "; ".join(cleaned)
    return out


def strip_header_controls(out: Outcome) -> list[str]:
    """Remove control characters from the headers kept with a report (sender, subject, Message-ID)
    and say which. A partner's mail is not corrected by refusing it, so it is kept, as every feed
    is, without them (:mod:`commonwatch.textio`); the report's records are stripped by the
    pipeline, whose run notes name the fields."""
    notes = []
    for name in ("sender", "subject", "message_id"):
        text, removed = strip_control_text(getattr(out, name))
        if removed:
            setattr(out, name, text)
            notes.append(f"{removed} control character(s) removed from the {name.replace('_', '-')}")
    return notes


class _Prebuilt:
    """A parser that yields batches already parsed from partners' reports."""

    name = FEED
    description = "Reports from partner CERTs"

    def __init__(self, batches: dict[str, ParsedBatch]):
        self.batches = batches

    def parse(self, source: Source) -> Iterator[ParsedBatch]:
        yield self.batches[source.name]


def _pipeline(engine: Engine, sessionmaker, outcomes: list[tuple[Mail, Outcome]], clock: Clock,
              data_dir: Path | None, now: datetime) -> int | None:
    """Put every readable report's rows through the feed pipeline's stages in one batch; the run id."""
    from commonwatch.pipeline.runner import ingest_sources

    # One batch for the whole chunk: the stages run once over every report's rows (columnar), not once
    # per report; each row carries its report's digest.
    frames = []
    for _mail, o in outcomes:
        if o.status == "ingested" and o.parsed is not None:
            frames.append(records_frame(o.parsed.records, range(1, len(o.parsed.records) + 1)).with_columns(
                pl.lit(f"partner:{o.partner_org_id}").alias("feed.provider"),
                pl.lit(o.digest[:16]).alias("extra.inbound_report")))
    if not frames:
        return None
    frame = pl.concat(frames, how="diagonal").with_columns(pl.lit(FEED).alias("feed.name"))
    name = f"partner reports ({len(frames)})"
    summary = ingest_sources(engine, sessionmaker, [Source(name, io.BytesIO(b""), now)],
                             _Prebuilt({name: ParsedBatch(frame=frame)}), feed_label=FEED,
                             source_label="partner reports", clock=clock, data_dir=data_dir,
                             actor="cooperation:inbound")
    return summary.run_id


def _inbound_rules(data_dir: Path | None) -> tuple[int, timedelta]:
    from commonwatch.cooperation.services import request_rules

    rules = request_rules(data_dir)["inbound"]
    return int(rules["max_bytes"]), timedelta(hours=int(rules["respond_hours"]))


def ingest_mails(engine: Engine, sessionmaker, mails: Iterable[Mail], clock: Clock, data_dir: Path | None, *,
                 after_ingest=None, settings=None, centre_home: Path | None = None) -> list[InboundReport]:
    """Read, check and ingest ``mails`` in one pipeline run; record each as ingested or held, once.

    ``after_ingest(session, rows)`` runs inside the transaction that records the reports (the IMAP
    poller moves its cursor there), so a crash leaves both or neither; events are idempotent. The
    acknowledgement of each partner's report is queued in that transaction too (so each report has
    exactly one), and sent at once when ``settings`` is given, else by the delivery job. A report
    encrypted to the centre is decrypted in the centre's GnuPG home: ``centre_home``, else that of
    ``settings``, else ``<data dir>/gnupg`` (the default home)."""
    from commonwatch.cooperation.mailing import deliver_pending, queue_acknowledgements, their_ref

    max_bytes, respond = _inbound_rules(data_dir)
    now = clock.now()
    with sessionmaker() as session:
        keys = PartnerKeys(session, clock, centre_home=centre_home or _centre_home(settings, data_dir))
        try:
            outcomes: list[tuple[Mail, Outcome]] = []
            seen: set[str] = set()
            for mail in mails:
                o = read_mail(session, keys, mail, max_bytes, now)
                if o.digest in seen:
                    continue
                seen.add(o.digest)
                outcomes.append((mail, o))
        finally:
            keys.close()
    run_id = _pipeline(engine, sessionmaker, outcomes, clock, data_dir, now)
    rows: list[InboundReport] = []
    with sessionmaker() as session, session.begin():
        session.info["actor"] = "cooperation:inbound"
        session.info["clock"] = clock
        for mail, o in outcomes:
            if o.status == "duplicate":
                continue
            row = InboundReport(
                digest=o.digest, origin=mail.origin, origin_ref=mail.origin_ref[:500], message_id=o.message_id,
                sender=o.sender, subject=o.subject, partner_org_id=o.partner_org_id,
                format=o.parsed.format if o.parsed else "", signature=o.signature, signer=o.signer,
                encrypted=o.encrypted, status=o.status,
                reason=o.reason, size=len(mail.raw), raw=mail.raw if len(mail.raw) <= max_bytes else None,
                rows=len(o.parsed.records) if o.parsed and o.status == "ingested" else 0,
                run_id=run_id if o.status == "ingested" else None, received_at=now, respond_by=now + respond)
            session.add(row)
            rows.append(row)
        session.flush()
        refs = {o.digest: their_ref(o.message_id, (r.get("extra.report_id") for r in o.parsed.records)
                                    if o.parsed else ()) for _mail, o in outcomes}
        acks = [a.id for a in queue_acknowledgements(session, rows, refs, data_dir=data_dir)]
        if after_ingest is not None:
            after_ingest(session, rows)
    if settings is not None and acks:
        deliver_pending(sessionmaker, settings, clock, acks)
    return rows


def _centre_home(settings, data_dir: Path | None) -> Path | None:
    """The centre's GnuPG home (its secret key decrypts what partners encrypt to it)."""
    from commonwatch.notify.pgp import default_home

    if settings is not None:
        return default_home(settings)
    return Path(data_dir) / "gnupg" if data_dir is not None else None


# --- held reports: release after a fix, or discard with a reason -----------------------------------------

class CannotResolve(Exception):
    """The report is not held (or its bytes were not kept), so it cannot be released or discarded."""


def release(engine: Engine, sessionmaker, report_id: int, actor: str, clock: Clock, data_dir: Path | None, *,
            note: str = "", settings=None) -> InboundReport:
    """Read a held report again, with the partners' keys and the rules as they are now (a partner's key
    added since, a contact registered): readable, it goes through the pipeline as any report and is
    acknowledged; still unreadable, it stays held with the new reason. Either way it is audited."""
    from commonwatch.access import audit
    from commonwatch.cooperation.mailing import deliver_pending, queue_acknowledgements, their_ref

    max_bytes, respond = _inbound_rules(data_dir)
    now = clock.now()
    with sessionmaker() as session:
        row = session.get(InboundReport, report_id)
        if row is None or row.status != "held":
            raise CannotResolve("only a held report can be released")
        if row.raw is None:
            raise CannotResolve("the report's bytes were not kept (it was too large); ask the partner to resend")
        mail = Mail(bytes(row.raw), row.origin, row.origin_ref)
        keys = PartnerKeys(session, clock, centre_home=_centre_home(settings, data_dir))
        try:
            outcome = read_mail(session, keys, mail, max_bytes, now, check_duplicate=False)
        finally:
            keys.close()
    run_id = _pipeline(engine, sessionmaker, [(mail, outcome)], clock, data_dir, now) \
        if outcome.status == "ingested" else None
    acks: list[int] = []
    with sessionmaker() as session, session.begin():
        session.info["actor"] = actor
        session.info["clock"] = clock
        row = session.get(InboundReport, report_id)
        assert row is not None
        before = {"status": row.status, "reason": row.reason, "partner_org_id": row.partner_org_id}
        if outcome.status == "ingested" and outcome.parsed is not None:
            row.status, row.reason = "ingested", outcome.reason
            row.partner_org_id, row.signature, row.signer = outcome.partner_org_id, outcome.signature, outcome.signer
            row.encrypted, row.format = outcome.encrypted, outcome.parsed.format
            row.rows, row.run_id, row.respond_by = len(outcome.parsed.records), run_id, now + respond
            row.resolution, row.resolved_by, row.resolved_at = note or "released", actor, now
            session.flush()
            audit.record(session, "cooperation.report_released", "coop_inbound_reports", row.id, before=before,
                         after={"status": row.status, "rows": row.rows, "run_id": run_id, "note": note})
            ref = their_ref(outcome.message_id, (r.get("extra.report_id") for r in outcome.parsed.records))
            acks = [a.id for a in queue_acknowledgements(session, [row], {row.digest: ref}, again=True,
                                                              data_dir=data_dir)]
        else:
            row.reason = outcome.reason
            session.flush()
            audit.record(session, "cooperation.report_release_failed", "coop_inbound_reports", row.id,
                         before=before, after={"status": row.status, "reason": row.reason, "note": note})
        session.flush()
        session.expunge(row)
    if settings is not None and acks:
        deliver_pending(sessionmaker, settings, clock, acks)
    return row


def discard(session: Session, report: InboundReport, reason: str, actor: str, now: datetime) -> InboundReport:
    """Set a held report aside for good, with the coordinator's reason; its bytes stay for the record."""
    from commonwatch.access import audit
    from commonwatch.errors import Invalid
    from commonwatch.i18n import _

    if report.status != "held":
        raise Invalid("status", _("only a held report can be discarded"))
    reason = strip_control_text(reason.strip())[0]
    if not reason:
        raise Invalid("reason", _("give the reason for discarding it"))
    before = {"status": report.status}
    report.status, report.resolution, report.resolved_by, report.resolved_at = "discarded", reason[:2000], actor, now
    session.flush()
    audit.record(session, "cooperation.report_discarded", "coop_inbound_reports", report.id, before=before,
                 after={"status": report.status, "reason": report.resolution})
    return report


def held(session: Session, limit: int = 200) -> list[InboundReport]:
    return list(session.scalars(select(InboundReport).where(InboundReport.status == "held").order_by(
        InboundReport.id.desc()).limit(limit)))


def drop_folder(engine: Engine, sessionmaker, folder: Path, clock: Clock, data_dir: Path | None) -> list[InboundReport]:
    """Read every .eml in ``folder``; each read file moves to ``folder/done/`` once recorded."""
    files = sorted(p for p in folder.glob("*.eml") if p.is_file())
    mails = [Mail(p.read_bytes(), "folder", p.name) for p in files]
    rows = ingest_mails(engine, sessionmaker, mails, clock, data_dir)
    done = folder / "done"
    done.mkdir(exist_ok=True)
    for p in files:
        p.replace(done / p.name)
    return rows


def received_at(value: datetime) -> str:
    return value.isoformat()
