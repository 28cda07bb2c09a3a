"""TLP 2.0: who may read what. One rule, evaluated in SQL (``visible_to``) and in Python (outbound).

What the labels mean in commonwatch (see docs/intel.md):

* **the centre** -- the coordination centre running commonwatch: users with a staff role.
* **organisation** -- an organisation in the registry (constituent or partner CERT). A reader's
  *own* organisations are those they are a direct member of; their *organisation tree* adds the
  units below them (the tenancy model: a parent body sees its units).
* **recipients** of an object -- its owner organisation (who supplied it, or whom it is about)
  and the organisations named on it (``intel_shares.org_id``).
* **named recipients** -- people: the author of the object and the users named on it
  (``intel_shares.user_id``).
* **community** -- the centre and every organisation registered in commonwatch (its
  constituents and partner CERTs).

Then: CLEAR -> everyone; GREEN -> the community; AMBER -> the centre, and the recipients'
organisation trees; AMBER+STRICT -> the centre, and direct members of a recipient organisation
only; RED -> the named recipients only (centre staff included only when named).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, exists, false, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from commonwatch.i18n import N_

LEVELS: tuple[str, ...] = ("CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED")
RANK: dict[str, int] = {label: i for i, label in enumerate(LEVELS)}
LABELS = {
    "CLEAR": N_("TLP:CLEAR: no restriction"),
    "GREEN": N_("TLP:GREEN: the community"),
    "AMBER": N_("TLP:AMBER: recipient organisations and their units"),
    "AMBER+STRICT": N_("TLP:AMBER+STRICT: recipient organisations only"),
    "RED": N_("TLP:RED: named people only"),
}

#: The rule, as data: which kinds of reader each label admits. Both evaluators below read it.
GRANTS: dict[str, frozenset[str]] = {
    "CLEAR": frozenset({"everyone"}),
    "GREEN": frozenset({"community", "named"}),
    "AMBER": frozenset({"centre", "org_tree", "named"}),
    "AMBER+STRICT": frozenset({"centre", "org_direct", "named"}),
    "RED": frozenset({"named"}),
}


def normalise(value: str | None, default: str = "AMBER") -> str:
    """``TLP:amber+strict``, ``amber_strict``, ``WHITE`` -> one of :data:`LEVELS`."""
    if not value:
        return default
    text = value.strip().upper().removeprefix("TLP:").replace("_", "+").replace(" ", "")
    if text == "WHITE":
        return "CLEAR"
    if text not in RANK:
        raise ValueError(value)
    return text


def stricter(a: str, b: str) -> str:
    return a if RANK[a] >= RANK[b] else b


@dataclass(frozen=True)
class Reader:
    """What the rule needs to know about a reader (a principal, or a partner we push to)."""

    user_id: int
    is_centre: bool
    org_tree: frozenset[int]
    org_direct: frozenset[int]


@dataclass(frozen=True)
class Audience:
    """What the rule needs to know about an object."""

    tlp: str
    owner_org_id: int | None
    author_user_id: int | None
    share_orgs: frozenset[int] = frozenset()
    share_users: frozenset[int] = frozenset()


def allows(reader: Reader, audience: Audience) -> bool:
    """True if TLP lets ``reader`` have the object (Python side of :func:`clause`)."""
    orgs = set(audience.share_orgs)
    if audience.owner_org_id is not None:
        orgs.add(audience.owner_org_id)
    tests = {
        "everyone": lambda: True,
        "community": lambda: reader.is_centre or bool(reader.org_tree),
        "centre": lambda: reader.is_centre,
        "org_tree": lambda: bool(orgs & reader.org_tree),
        "org_direct": lambda: bool(orgs & reader.org_direct),
        "named": lambda: reader.user_id > 0 and (reader.user_id == audience.author_user_id
                                                 or reader.user_id in audience.share_users),
    }
    return any(tests[g]() for g in GRANTS.get(audience.tlp, GRANTS["RED"]))


def clause(principal, *, tlp, owner, author, stix_id) -> ColumnElement[bool]:
    """The SQL side of the rule for a table with TLP, owner, author and STIX id columns."""
    from commonwatch.access.models import Membership
    from commonwatch.intel.models import IntelShare

    uid = principal.user_id
    tree = sorted(principal.org_ids)
    direct = select(Membership.org_id).where(Membership.user_id == uid).scalar_subquery()

    def shared(cond) -> ColumnElement[bool]:
        return exists(select(IntelShare.id).where(IntelShare.stix_id == stix_id, cond))

    terms = {
        "everyone": lambda: true(),
        "community": lambda: true() if (principal.is_staff or tree) else false(),
        "centre": lambda: true() if principal.is_staff else false(),
        "org_tree": lambda: or_(owner.in_(tree), shared(IntelShare.org_id.in_(tree))) if tree else false(),
        "org_direct": lambda: or_(owner.in_(direct), shared(IntelShare.org_id.in_(direct))) if tree else false(),
        "named": lambda: or_(author == uid, shared(IntelShare.user_id == uid)) if uid > 0 else false(),
    }
    ors = []
    for label, grants in GRANTS.items():
        ors.append(and_(tlp == label, or_(*[terms[g]() for g in sorted(grants)])))
    return or_(*ors)


def reader_for(session, principal) -> Reader:
    """The :class:`Reader` of a principal, with its direct memberships from the database."""
    from commonwatch.access.models import Membership

    direct = frozenset(session.scalars(select(Membership.org_id).where(Membership.user_id == principal.user_id)))
    return Reader(principal.user_id, principal.is_staff, frozenset(principal.org_ids), direct)


def partner_reader(org_ids: Iterable[int]) -> Reader:
    """A partner organisation as a reader, for what we push out to it (no person is named)."""
    orgs = frozenset(org_ids)
    return Reader(0, False, orgs, orgs)


def at_most(tlp_column, ceiling: str) -> ColumnElement[bool]:
    """Rows whose label is no stricter than ``ceiling`` (a collection's sharing ceiling)."""
    return tlp_column.in_([label for label in LEVELS if RANK[label] <= RANK[ceiling]])
