"""Who may hear which recording (object-level), as a Python rule and as the same SQL.

- admin: every recording;
- agent: the calls they took, and the calls of customers they own now (a new owner hears a
  departed colleague's calls with the customer);
- supervisor: the calls of their region. A call's region is its customer's region, or, for a
  customer without one (or no customer at all), the region of the agent who took it;
- everyone also hears their own calls. Technicians hear nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, false, or_, true
from sqlalchemy.orm import aliased

from crm_core.models import Customer, User
from recordings.models import Recording

# The agent who took the call, joined next to the customer in list queries.
AGENT = aliased(User, name="rec_agent")


@dataclass(frozen=True)
class Viewer:
    id: int
    role: str
    region: str | None


@dataclass(frozen=True)
class RecordingOwners:
    """The live facts the rule needs: the customer's owner and region, the agent's region."""

    agent_id: int | None
    customer_owner_id: int | None
    customer_region: str | None
    agent_region: str | None

    @property
    def region(self) -> str | None:
        return self.customer_region or self.agent_region


def can_hear(viewer: Viewer, owners: RecordingOwners) -> bool:
    if viewer.role == "admin":
        return True
    if owners.agent_id == viewer.id:
        return True
    if viewer.role == "agent":
        return owners.customer_owner_id == viewer.id
    if viewer.role == "supervisor":
        return viewer.region is not None and owners.region == viewer.region
    return False


def scope(viewer: Viewer) -> ColumnElement[bool]:
    """The same rule as can_hear, for lists; Customer and AGENT are outer-joined (queries)."""
    if viewer.role == "admin":
        return true()
    clauses: list[ColumnElement[bool]] = [Recording.agent_id == viewer.id]
    if viewer.role == "agent":
        clauses.append(Customer.owner_id == viewer.id)
    elif viewer.role == "supervisor" and viewer.region is not None:
        clauses.append(Customer.region == viewer.region)
        clauses.append(and_(Customer.region.is_(None), AGENT.region == viewer.region))
    return or_(false(), *clauses)
