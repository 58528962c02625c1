"""Shared pieces of the keys, teams and budgets routers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from spendgate.api.errors import ApiError
from spendgate.storage.budgets import BudgetStore
from spendgate.storage.keys import Conflict, KeyStore, NotFound
from spendgate.vault import SecretError

if TYPE_CHECKING:
    from spendgate.governance import Governance


@dataclass(frozen=True)
class Handles:
    """What the keys and budgets routes work with, once the gateway has started."""

    gov: Governance
    keys: KeyStore
    budgets: BudgetStore


def governance(request: Request) -> Handles:
    """The running gateway's keys and budgets, or a 503 while it starts."""
    found: Governance | None = request.app.state.gateway.governance
    if found is None or found.keys is None or found.budgets is None:
        raise ApiError(503, "not_ready", "the gateway is still starting; retry in a moment")
    return Handles(found, found.keys, found.budgets)


@contextmanager
def translated() -> Iterator[None]:
    """Library errors as API errors: 404, 409, 400."""
    try:
        yield
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    except Conflict as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    except (ValueError, SecretError) as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc
