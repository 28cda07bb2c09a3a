"""A CSAF provider's distribution (CSAF 2.0 §7.1): its ``provider-metadata.json`` (R7), then the
advisories it lists in a directory (R11–R14: ``changes.csv``, else ``index.txt``) or in ROLIE feeds
(R15), each advisory checked (schema and mandatory tests) as it is stored.

Offline first: a folder that mirrors the provider (the metadata file with the paths its URLs name
below the metadata's own folder) is read the same way as the provider itself. Online, every fetch
goes through the collector's outbound policy (allowlist, size and time limits) as a conditional
request with the validators of the last one, and a listing's delta cursor (the newest
``current_release_date`` or ROLIE ``updated`` taken) keeps unchanged advisories from being fetched
again.

Each advisory fetched is also checked as a trusted provider's must be (R18–R20), whatever the
provider's role: its ``.sha512`` (else ``.sha256``) and its ``.asc`` beside it, fetched the same way,
against the OpenPGP keys the metadata lists (``public_openpgp_keys``, each imported only when its
fingerprint is the one listed) in a throw-away GnuPG home on commonwatch's clock. A hash that does
not match or a signature that does not verify quarantines the advisory; a missing hash or
signature is kept on its records (``provenance``), as a failure when the provider claims to be a
trusted provider. The file name must follow §5.1 (R2): a name that does not is kept as a failure,
and the advisory is still read.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.errors import Invalid
from commonwatch.vulns.intake import MAX_RECORD_BYTES, IntakeError

ROLES = ("csaf_publisher", "csaf_provider", "csaf_trusted_provider")
TRUSTED = "csaf_trusted_provider"
HASHES = ("sha512", "sha256")          # R18: the stronger one is checked when both are there
TLP_LABELS = ("UNLABELED", "WHITE", "GREEN", "AMBER", "RED")
METADATA_NAME = "provider-metadata.json"


def check_metadata(doc: Any) -> list[str]:
    """The provider metadata's required fields (CSAF 2.0 §7.1.7, the provider schema's required
    properties and enumerations); the problems, empty when it is usable."""
    if not isinstance(doc, dict):
        return ["/: must be an object"]
    out = []
    for key in ("canonical_url", "last_updated", "metadata_version", "publisher", "role"):
        if key not in doc:
            out.append(f"/{key}: required")
    for key in ("list_on_CSAF_aggregators", "mirror_on_CSAF_aggregators"):
        if not isinstance(doc.get(key), bool):
            out.append(f"/{key}: required, true or false")
    if "metadata_version" in doc and doc["metadata_version"] != "2.0":
        out.append(f"/metadata_version: {doc['metadata_version']!r} is not 2.0")
    if "role" in doc and doc["role"] not in ROLES:
        out.append(f"/role: {doc['role']!r} is not one of {', '.join(ROLES)}")
    pub = doc.get("publisher")
    if "publisher" in doc and not (isinstance(pub, dict) and all(isinstance(pub.get(k), str) and pub[k]
                                                                 for k in ("category", "name", "namespace"))):
        out.append("/publisher: category, name and namespace are required")
    if "canonical_url" in doc and not (isinstance(doc["canonical_url"], str)
                                       and doc["canonical_url"].startswith(("https://", "http://"))):
        out.append("/canonical_url: must be a URL")  # TLS (R3) is the outbound allowlist's to demand
    dists = doc.get("distributions", [])
    if not isinstance(dists, list):
        return [*out, "/distributions: must be a list"]
    for i, dist in enumerate(dists):
        if not isinstance(dist, dict) or not (dist.get("directory_url") or dist.get("rolie")):
            out.append(f"/distributions/{i}: directory_url or rolie is required")
            continue
        if "directory_url" in dist and not isinstance(dist["directory_url"], str):
            out.append(f"/distributions/{i}/directory_url: must be a URL")
        rolie = dist.get("rolie")
        if rolie is not None:
            feeds = rolie.get("feeds") if isinstance(rolie, dict) else None
            if not isinstance(feeds, list) or not feeds:
                out.append(f"/distributions/{i}/rolie/feeds: required, at least one feed")
                continue
            for j, feed in enumerate(feeds):
                if not isinstance(feed, dict) or not isinstance(feed.get("url"), str):
                    out.append(f"/distributions/{i}/rolie/feeds/{j}/url: required")
                elif feed.get("tlp_label") not in TLP_LABELS:
                    out.append(f"/distributions/{i}/rolie/feeds/{j}/tlp_label: {feed.get('tlp_label')!r} is not "
                               f"one of {', '.join(TLP_LABELS)}")
    return out


def read_changes(text: str) -> list[tuple[str, str]]:
    """``changes.csv`` (R13): ``"path","current_release_date"`` per line, newest first, no header."""
    out = []
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row:
            continue
        if len(row) != 2 or not row[0].strip():
            raise IntakeError(f"changes.csv line {n}", f"{len(row)} fields, \"path\",\"current_release_date\" expected")
        out.append((row[0].strip(), row[1].strip()))
    return out


def read_index(text: str) -> list[str]:
    """``index.txt`` (R12): one advisory path per line."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def read_rolie(doc: Any) -> list[tuple[str, str]]:
    """A ROLIE feed (R15, RFC 8322 in JSON): ``(advisory URL, updated)`` of each entry, the URL from
    ``content.src`` or the ``self`` link."""
    feed = doc.get("feed") if isinstance(doc, dict) else None
    if not isinstance(feed, dict):
        raise IntakeError("feed", "a ROLIE feed document has a feed object")
    out = []
    for i, e in enumerate(feed.get("entry") or []):
        if not isinstance(e, dict):
            raise IntakeError(f"feed.entry[{i}]", "must be an object")
        src = (e.get("content") or {}).get("src") if isinstance(e.get("content"), dict) else None
        if not src:
            src = next((ln.get("href") for ln in e.get("link") or [] if isinstance(ln, dict)
                        and ln.get("rel") == "self"), None)
        if not isinstance(src, str) or not src:
            raise IntakeError(f"feed.entry[{i}]", "neither content.src nor a self link")
        out.append((src, str(e.get("updated") or "")))
    return out


_FILENAME_RUN = re.compile(r"[^+\-a-z0-9]+")


def expected_filename(tracking_id: str) -> str:
    r"""The file name §5.1 gives an advisory (R2): the tracking id lowercased, each run of characters
    outside ``[+\-a-z0-9]`` replaced by ``_``, then ``.json``."""
    return _FILENAME_RUN.sub("_", tracking_id.lower()) + ".json"


def tracking_id_of(raw: bytes) -> str | None:
    """An advisory's ``/document/tracking/id``, or None when it has none (its own checks say so)."""
    import json

    try:
        tracking_id = json.loads(raw)["document"]["tracking"]["id"]
    except (ValueError, KeyError, TypeError):
        return None
    return tracking_id if isinstance(tracking_id, str) else None


def filename_failure(url: str, tracking_id: str | None) -> dict[str, str] | None:
    """The R2 failure of an advisory fetched from ``url``, or None when its name is right (or there
    is no tracking id to judge by)."""
    if tracking_id is None:
        return None
    name = url.split("?", 1)[0].rsplit("/", 1)[-1]
    want = expected_filename(tracking_id)
    if name == want:
        return None
    return {"test": "R2", "path": "/document/tracking/id",
            "reason": f"the file is named {name!r}; tracking id {tracking_id!r} gives {want!r}"}


class IntegrityError(Exception):
    """An advisory whose hash or signature is wrong: it is quarantined with this reason."""

    def __init__(self, test: str, reason: str):
        super().__init__(f"{test}: {reason}")
        self.test, self.reason = test, reason


@dataclass
class Integrity:
    status: str = "unsigned"    # signed | unsigned | unverified (signed, but no listed key to check it with)
    hash: str = ""              # the algorithm whose hash file matched; "" when none was there
    signer: str = ""            # the fingerprint of the provider key that signed it
    failures: list[dict[str, str]] = field(default_factory=list)


class ProviderKeys:
    """The provider's public OpenPGP keys (R20) in a throw-away GnuPG home, every gpg run on
    commonwatch's clock (``ClockedGPG``), so a key's expiry and a signature's time are judged at
    the intake's ``now``."""

    def __init__(self, now: datetime):
        from commonwatch.clock import FrozenClock
        from commonwatch.notify.pgp import ClockedGPG, gpg_binary

        binary = gpg_binary()
        if binary is None:
            raise IntakeError("public_openpgp_keys", "GnuPG (gpg) is not installed; install the Debian package gnupg")
        self._dir = tempfile.TemporaryDirectory(prefix="cw-csaf-")
        Path(self._dir.name).chmod(0o700)
        self.gpg = ClockedGPG(FrozenClock(now), gpgbinary=binary, gnupghome=self._dir.name)
        self.fingerprints: set[str] = set()

    def add(self, armored: bytes, fingerprint: str | None) -> str | None:
        """Import the key if it is the one listed (any key in the file when the metadata gives no
        fingerprint: the schema makes it optional); the problem otherwise."""
        text = armored.decode("utf-8", "replace")
        if "PRIVATE KEY" in text:
            return "the key file holds a private key"
        found = {str(k.get("fingerprint") or "").upper() for k in self.gpg.scan_keys_mem(text)
                 if k.get("type") == "pub"}
        listed = {fingerprint.replace(" ", "").upper()} if fingerprint else found
        if not found or not listed <= found:
            held = ", ".join(sorted(found)) or "no public key"
            return f"the key file holds {held}, not the listed {', '.join(sorted(listed))}"
        self.gpg.import_keys(text)
        self.fingerprints |= listed
        return None

    def verify(self, data: bytes, signature: bytes) -> str:
        """The fingerprint of the listed key that made ``signature`` over ``data``; else IntegrityError."""
        result, fpr = self.gpg.verify_detached(data, signature)
        if result.valid and fpr in self.fingerprints:
            return fpr
        if result.valid:
            raise IntegrityError("R19", f"signed by {fpr}, which the provider metadata does not list")
        status = getattr(result, "status", "") or "no valid signature"
        if status == "no public key":
            raise IntegrityError("R19", f"signed with a key the provider does not list ({result.key_id or 'unknown'})")
        raise IntegrityError("R19", f"the OpenPGP signature does not verify ({status})")

    def close(self) -> None:
        import shutil
        import subprocess

        gpgconf = shutil.which("gpgconf")
        if gpgconf:
            subprocess.run([gpgconf, "--homedir", self._dir.name, "--kill", "all"], check=False,
                           capture_output=True, timeout=30)
        self._dir.cleanup()


def _hash_in(text: bytes) -> str:
    """The hex digest a ``.sha256`` / ``.sha512`` file gives (``sha256sum`` form: digest, then the name)."""
    first = text.decode("ascii", "replace").strip().split()
    return first[0].lower() if first else ""


@dataclass
class ProviderReport:
    keys: list[str] = field(default_factory=list)   # records added or updated
    fetched: int = 0
    not_modified: int = 0
    skipped: int = 0             # not newer than the listing's cursor
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    fetch_errors: int = 0        # advisories that could not be fetched (tried again next time)
    integrity: dict[str, int] = field(default_factory=dict)   # signed / unsigned / unverified: how many
    failures: list[str] = field(default_factory=list)   # distribution failures that did not stop an advisory
    reasons: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # one per listing read

    def summary(self) -> str:
        return (f"{self.fetched} advisories read, {self.not_modified} not modified, {self.skipped} not newer, "
                f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.quarantined} quarantined, {self.fetch_errors} not fetched"
                + "".join(f", {n} {k}" for k, n in sorted(self.integrity.items()))
                + (f", {len(self.failures)} distribution failures" if self.failures else ""))


class _Reader:
    """Where the provider's files come from: a mirror folder, or the provider through the outbound
    policy with conditional requests (one ``vuln_sources`` row per URL holds the validators)."""

    def __init__(self, session: Session, settings, now: datetime, base_url: str, folder: Path | None):
        self.session, self.settings, self.now = session, settings, now
        self.base_url, self.folder = base_url, folder

    def source(self, url: str, kind: str):
        from commonwatch.vulns.models import VulnSource

        src = self.session.scalars(select(VulnSource).where(VulnSource.url == url)).first()
        if src is None:
            src = VulnSource(url=url, kind=kind, etag="", last_modified="", last_status="", cursor="")
            self.session.add(src)
            self.session.flush()
        return src

    def get(self, url: str, kind: str, *, conditional: bool = True) -> bytes | None:
        """The body, or None when the provider answered 304 Not Modified."""
        if self.folder is not None:
            if not url.startswith(self.base_url):
                raise IntakeError(url, f"outside the mirrored folder {self.base_url}")
            rel = url[len(self.base_url):].split("?", 1)[0]
            path = (self.folder / rel).resolve()
            if not path.is_relative_to(self.folder.resolve()):
                raise IntakeError(url, "leaves the mirrored folder")
            if not path.is_file():
                raise IntakeError(url, f"not in the mirror ({path.name})")
            if path.stat().st_size > MAX_RECORD_BYTES:
                raise IntakeError(url, f"larger than {MAX_RECORD_BYTES:,} bytes")
            return path.read_bytes()
        from commonwatch import outbound
        from commonwatch.feeds.collect import fetch_url

        src = self.source(url, kind)
        result = fetch_url(url, outbound.Policy.of(self.settings), etag=src.etag if conditional else "",
                           last_modified=src.last_modified if conditional else "")
        src.fetched_at = self.now
        if result.not_modified:
            src.last_status = "304 not modified"
            return None
        try:
            raw = result.body.read_bytes() if result.body else b""
        finally:
            if result.body:
                result.body.unlink(missing_ok=True)
        src.etag, src.last_modified = result.etag[:500], result.last_modified[:100]
        src.last_status = f"200, {len(raw)} bytes"
        return raw


def _load_json(raw: bytes, where: str) -> Any:
    from commonwatch.vulns.intake import loads

    return loads(raw, where)


def import_provider(session: Session, location: str | Path, settings, now: datetime) -> ProviderReport:
    """Read a provider: ``location`` is the URL of its ``provider-metadata.json`` (or of the folder
    holding it), or a local mirror (that file, or the folder holding it)."""
    from commonwatch.vulns import services as svc

    folder: Path | None = None
    if isinstance(location, Path) or not str(location).startswith(("http://", "https://")):
        path = Path(location)
        meta_path = path / METADATA_NAME if path.is_dir() else path
        if not meta_path.is_file():
            raise IntakeError(str(path), f"no {METADATA_NAME} here")
        folder = meta_path.parent
        meta = _load_json(meta_path.read_bytes(), str(meta_path))
        problems = check_metadata(meta)
        if problems:
            raise IntakeError(str(meta_path), "; ".join(problems))
        base_url = meta["canonical_url"].rsplit("/", 1)[0] + "/"
    else:
        url = str(location)
        if not url.endswith(".json"):
            url = url.rstrip("/") + "/" + METADATA_NAME
        base_url = url.rsplit("/", 1)[0] + "/"
        reader0 = _Reader(session, settings, now, base_url, None)
        raw = reader0.get(url, "csaf-provider", conditional=False)
        meta = _load_json(raw or b"", url)
        problems = check_metadata(meta)
        if problems:
            raise IntakeError(url, "; ".join(problems))
    reader = _Reader(session, settings, now, base_url, folder)
    rep = ProviderReport()
    role = str(meta.get("role", ""))
    origin = {"provider": str(meta["canonical_url"]), "publisher": str(meta["publisher"]["name"]), "role": role}
    keys = load_keys(reader, meta, now, rep)

    def take(url: str, name: str) -> None:
        try:
            raw = reader.get(url, "csaf")
        except (Invalid, IntakeError) as exc:
            rep.fetch_errors += 1
            rep.reasons.append(f"{url}: {exc}")
            return
        if raw is None:
            rep.not_modified += 1
            return
        rep.fetched += 1
        try:
            integrity = check_integrity(reader, url, raw, keys, role)
        except IntegrityError as exc:
            svc.quarantine(session, name, str(exc), raw, now, [{"test": exc.test, "path": "/", "reason": exc.reason}])
            rep.quarantined += 1
            rep.reasons.append(f"{name}: {exc}")
            return
        tracking_id = tracking_id_of(raw)
        r2 = filename_failure(url, tracking_id)
        if r2 is not None:
            integrity.failures.insert(0, r2)
        r = svc.import_document(session, raw, name, now)
        rep.added, rep.updated, rep.unchanged = (rep.added + r.added, rep.updated + r.updated,
                                                 rep.unchanged + r.unchanged)
        rep.quarantined += r.quarantined
        rep.reasons += r.reasons
        rep.keys += r.keys
        if tracking_id is not None and (r.added or r.updated or r.unchanged):
            stamp_provenance(session, tracking_id, {
                **origin, "integrity": integrity.status, "hash": integrity.hash, "signer": integrity.signer,
                "checked_at": now.isoformat(), "failures": integrity.failures})
            rep.integrity[integrity.status] = rep.integrity.get(integrity.status, 0) + 1
            rep.failures += [f"{name}: {f['test']} {f['reason']}" for f in integrity.failures]

    try:
        read_distributions(session, meta, reader, rep, take, folder)
    finally:
        if keys is not None:
            keys.close()
    return rep


def read_distributions(session: Session, meta: dict[str, Any], reader: _Reader, rep: ProviderReport, take,
                       folder: Path | None) -> None:
    """Each distribution's listing (changes.csv, else index.txt; or the ROLIE feeds), each advisory
    newer than the listing's cursor handed to ``take``."""
    for dist in meta.get("distributions") or []:
        if dist.get("directory_url"):
            directory = dist["directory_url"].rstrip("/") + "/"
            changes_url = urljoin(directory, "changes.csv")
            src = reader.source(changes_url, "csaf-dir") if folder is None else None
            try:
                raw = reader.get(changes_url, "csaf-dir")
                entries = read_changes(raw.decode("utf-8")) if raw is not None else []
                listing = "changes.csv"
            except (Invalid, IntakeError):
                raw = reader.get(urljoin(directory, "index.txt"), "csaf-dir", conditional=False)
                entries = [(p, "") for p in read_index((raw or b"").decode("utf-8"))]
                listing = "index.txt"
            cursor = src.cursor if src is not None else ""
            newest, failed = cursor, rep.fetch_errors
            for rel, date in entries:
                if cursor and date and date <= cursor:
                    rep.skipped += 1
                    continue
                take(urljoin(directory, rel), urljoin(directory, rel))
                newest = max(newest, date)
            if src is not None:
                if rep.fetch_errors == failed:   # a failed fetch is tried again next time
                    src.cursor = newest[:64]
                src.last_status = f"{listing}: {len(entries)} entries"
            rep.lines.append(f"{directory} ({listing}): {len(entries)} listed")
        rolie = dist.get("rolie") or {}
        for feed in rolie.get("feeds") or []:
            feed_url = feed["url"]
            src = reader.source(feed_url, "csaf-rolie") if folder is None else None
            raw = reader.get(feed_url, "csaf-rolie")
            if raw is None:
                rep.lines.append(f"{feed_url} (ROLIE, TLP:{feed.get('tlp_label')}): not modified")
                continue
            entries = read_rolie(_load_json(raw, feed_url))
            cursor = src.cursor if src is not None else ""
            newest, failed = cursor, rep.fetch_errors
            for href, updated in entries:
                if cursor and updated and updated <= cursor:
                    rep.skipped += 1
                    continue
                absolute = urljoin(feed_url, href)
                take(absolute, absolute)
                newest = max(newest, updated)
            if src is not None:
                if rep.fetch_errors == failed:
                    src.cursor = newest[:64]
                src.last_status = f"ROLIE: {len(entries)} entries"
            rep.lines.append(f"{feed_url} (ROLIE, TLP:{feed.get('tlp_label')}): {len(entries)} listed")
    if not meta.get("distributions"):
        rep.lines.append("no distributions listed")


def load_keys(reader: _Reader, meta: dict[str, Any], now: datetime, rep: ProviderReport) -> ProviderKeys | None:
    """The provider's public OpenPGP keys (R20: ``public_openpgp_keys``, each fetched like any other
    file of the provider, or read from the mirror); a key that cannot be read, or whose fingerprint
    is not the listed one, is left out and said so in the report. None when none is listed."""
    listed = [k for k in meta.get("public_openpgp_keys") or [] if isinstance(k, dict)]
    if not listed:
        return None
    try:
        keys = ProviderKeys(now)
    except IntakeError as exc:      # no gpg here: signatures are kept as not checked, not refused
        rep.failures.append(f"/public_openpgp_keys: R20 {exc}")
        return None
    for i, k in enumerate(listed):
        where = f"/public_openpgp_keys/{i}"
        url, fpr = k.get("url"), k.get("fingerprint")
        if not isinstance(url, str) or not (fpr is None or isinstance(fpr, str)):
            rep.failures.append(f"{where}: R20 url (and a fingerprint) required")
            continue
        try:
            armored = reader.get(url, "csaf-key", conditional=False) or b""
        except (Invalid, IntakeError) as exc:
            rep.failures.append(f"{where}: R20 {url} could not be read: {exc}")
            continue
        problem = keys.add(armored, fpr)
        if problem:
            rep.failures.append(f"{where}: R20 {problem}")
    return keys


def _sidecar(reader: _Reader, url: str, kind: str) -> bytes | None:
    """A file beside the advisory (hash, signature), or None when the provider has none. Read
    unconditionally: it is only asked for when its advisory was (re)fetched, and then it is needed."""
    try:
        return reader.get(url, kind, conditional=False)
    except (Invalid, IntakeError):
        return None


def check_integrity(reader: _Reader, url: str, raw: bytes, keys: ProviderKeys | None, role: str) -> Integrity:
    """R18 (the hash file beside the advisory) and R19 (its OpenPGP signature, against the keys of
    R20). Raises :class:`IntegrityError` when a hash or signature is there and wrong; a missing one
    is a failure on the result when the provider is a trusted provider (it must give them)."""
    out = Integrity()
    trusted = role == TRUSTED
    for alg in HASHES:
        given = _sidecar(reader, f"{url}.{alg}", "csaf-hash")
        if given is None:
            continue
        digest, stated = hashlib.new(alg, raw).hexdigest(), _hash_in(given)
        if stated != digest:
            raise IntegrityError("R18", f"the {alg.upper()} file gives {stated[:16] or 'nothing'}…, the advisory's "
                                        f"{alg.upper()} is {digest[:16]}…")
        out.hash = alg
        break
    if not out.hash and trusted:
        out.failures.append({"test": "R18", "path": "/", "reason": "no .sha256 or .sha512 file beside the advisory, "
                                                                   "which a trusted provider must give"})
    signature = _sidecar(reader, f"{url}.asc", "csaf-signature")
    if not signature:
        if trusted:
            out.failures.append({"test": "R19", "path": "/", "reason": "no OpenPGP signature (.asc) beside the "
                                                                       "advisory, which a trusted provider must give"})
        return out
    if keys is None or not keys.fingerprints:
        out.status = "unverified"
        out.failures.append({"test": "R20", "path": "/", "reason": "signed, but the provider metadata lists no public "
                                                                   "OpenPGP key that could be read to check it"})
        return out
    out.signer, out.status = keys.verify(raw, signature), "signed"
    return out


def stamp_provenance(session: Session, tracking_id: str, provenance: dict[str, Any]) -> None:
    """Keep where the advisory's records came from, and its integrity, on each of them."""
    from commonwatch.vulns.models import VulnRecord

    for rec in session.scalars(select(VulnRecord).where(
            VulnRecord.record_key.startswith(f"csaf:{tracking_id}#", autoescape=True))):
        rec.provenance = provenance
