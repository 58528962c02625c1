"""Message Batches through the gateway: budgets at creation, usage from the results.

A batch is billed when its results exist, not when it is created, so the proxy's
per-call record does not fit. Instead:

* ``POST /v1/messages/batches``: the worst case of every request (input
  estimate + ``max_tokens`` at the output price, :mod:`spendgate.budgets.estimate`)
  at the batch price (x0.5) is reserved against every budget that applies to
  the creator, atomically, and the creator (key, team, user, project, tags,
  credential) is remembered in the ``batches`` table in the same transaction.
  A batch that does not fit is refused with the budgets' 429.
* Batch objects passing back (create, retrieve, list, cancel) get their
  ``results_url`` pointed at the gateway, so SDKs download results through it.
  A batch seen ended with nothing succeeded releases its reservation.
* ``GET /v1/messages/batches/{id}/results``: the JSONL is relayed unchanged
  while a tee reads it line by line and files one priced record per
  ``succeeded`` result (id derived from batch id + ``custom_id``, so a second
  download records nothing new), attributed to the creator. A complete
  download settles the reservation at the actual cost, once.
* A periodic sweep releases reservations of batches older than Anthropic's
  29-day results retention, and of creations that never got a batch id.

Ordinary ``/v1/messages`` calls never reach this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

import orjson
from sqlalchemy.exc import SQLAlchemyError

from spendgate.budgets.estimate import worst_case
from spendgate.budgets.guard import BudgetGuard
from spendgate.budgets.model import Budget
from spendgate.budgets.periods import period_window
from spendgate.pricing import PriceBook, apply_cost
from spendgate.pricing.engine import BATCH_FACTOR
from spendgate.proxy.auth import Resolved
from spendgate.proxy.capture import Captured
from spendgate.proxy.forward import Receive, Scope, read_body
from spendgate.records import Attribution, CallRecord, new_id, utcnow
from spendgate.storage.batches import BatchRow, BatchStore
from spendgate.storage.budgets import BudgetStore, BudgetTx, Claim, Exhausted
from spendgate.usage import Usage

log = logging.getLogger("spendgate.batches")

BATCHES = "/v1/messages/batches"
ENDPOINT = BATCHES
# Anthropic keeps results for 29 days after creation; nothing can settle later.
RESULTS_RETENTION = timedelta(days=29)
# A creation still without a batch id after this long never reached Anthropic.
UNNAMED_TIMEOUT = timedelta(hours=1)
SWEEP_SECONDS = 3600.0
_RESULTS = re.compile(r"^/v1/messages/batches/([^/]+)/results$")
_ONE = re.compile(r"^/v1/messages/batches/([^/]+)(/cancel)?$")
_NAMESPACE = uuid.UUID("6f1d1c0e-5b7a-4c55-9a3e-8f9b0c2d4e61")
_READABLE = frozenset({None, "identity", "gzip", "x-gzip", "deflate"})

Submit = Callable[[CallRecord], None]


def result_record_id(batch_id: str, custom_id: str) -> str:
    """The record id of one batch result: the same on every download."""
    return str(uuid.uuid5(_NAMESPACE, f"{batch_id}\x00{custom_id}"))


def batch_worst_case(book: PriceBook, body: bytes, at: datetime) -> tuple[int, int]:
    """``(requests, nano-dollars)``: the most a create-batch body can cost at batch prices.

    A body that is not a batch is (0, 0): Anthropic refuses it without charge.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return 0, 0
    requests = doc.get("requests") if isinstance(doc, dict) else None
    if not isinstance(requests, list):
        return 0, 0
    total = 0
    for item in requests:
        params = item.get("params") if isinstance(item, dict) else None
        if not isinstance(params, dict):
            continue
        model, max_tokens = params.get("model"), params.get("max_tokens")
        total += worst_case(
            book,
            model=model if isinstance(model, str) else None,
            body=orjson.dumps(params),
            max_tokens=max_tokens if isinstance(max_tokens, int) else None,
            at=at,
        ).nanousd
    discounted = (Decimal(total) * BATCH_FACTOR).to_integral_value(rounding=ROUND_CEILING)
    return len(requests), int(discounted)


def _decompressor(encoding: str | None) -> Any:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    return None


def _origin(scope: Scope) -> str | None:
    """How the client reached us (``results_url`` is rewritten to it); None without a Host."""
    host = next((v for k, v in scope["headers"] if k == b"host"), b"").decode("latin-1")
    if not host:
        return None
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}"


class ResultsTee:
    """Reads a results JSONL as it is relayed and files a record per succeeded line.

    Holds at most one line (plus the chunk being split), never the file.
    """

    def __init__(self, call: BatchCall, encoding: str | None) -> None:
        self.call = call
        self._decomp = _decompressor(encoding)
        self._parts: list[bytes] = []
        self.broken = False

    def feed(self, chunk: bytes) -> None:
        """Consume a chunk exactly as it was forwarded."""
        if self.broken:
            return
        if self._decomp is not None:
            try:
                chunk = self._decomp.decompress(chunk)
            except zlib.error:
                self.broken = True
                return
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            piece = chunk[start:end]
            if self._parts:
                piece = b"".join([*self._parts, piece])
                self._parts = []
            self._line(piece)
            start = end + 1
        if start < len(chunk):
            self._parts.append(chunk[start:])

    def result(self) -> Captured:
        """Read the last line (if it has no newline); the download itself carries no usage."""
        if self._parts and not self.broken:
            self._line(b"".join(self._parts))
        self._parts = []
        return Captured()

    def _line(self, line: bytes) -> None:
        if b'"succeeded"' not in line:
            return  # errored, canceled and expired requests are not billed
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            log.warning("batch %s: a results line is not JSON; skipped", self.call.batch_id)
            return
        result = doc.get("result") if isinstance(doc, dict) else None
        custom_id = doc.get("custom_id") if isinstance(doc, dict) else None
        if not isinstance(result, dict) or result.get("type") != "succeeded":
            return
        message = result.get("message")
        if isinstance(message, dict) and isinstance(custom_id, str):
            self.call.file(custom_id, message)


@dataclass
class BatchCall:
    """The batch side of one proxied call (the proxy's ``BatchCall``)."""

    ledger: BatchLedger
    kind: str  # "create", "results" or "object"
    origin: str | None
    submit: Submit
    body: bytes | None = None
    batch_id: str | None = None
    row: BatchRow | None = None  # create: the pending row; results: the creator
    attribution: Attribution = field(default_factory=Attribution)
    filed: int = 0
    cost_nanousd: int = 0
    _tee: ResultsTee | None = None

    @property
    def rewrites(self) -> bool:
        """Whether the (small, JSON) answer is read whole and handed to :meth:`rewrite`."""
        return self.kind in ("create", "object")

    def tee(self, encoding: str | None) -> ResultsTee | None:
        """The results reader, for a results download in an encoding we can read."""
        if self.kind != "results":
            return None
        if encoding not in _READABLE:
            log.warning("batch %s: results in %s encoding not recorded", self.batch_id, encoding)
            return None
        self._tee = ResultsTee(self, encoding)
        return self._tee

    def file(self, custom_id: str, message: dict[str, Any]) -> None:
        """Record one succeeded result (priced here: the settlement needs the sum)."""
        assert self.batch_id is not None
        usage = message.get("usage")
        raw = dict(usage) if isinstance(usage, dict) else {}
        raw.setdefault("service_tier", "batch")  # batch prices even if the tier is missing
        model, msg_id, stop = message.get("model"), message.get("id"), message.get("stop_reason")
        record = CallRecord(
            id=result_record_id(self.batch_id, custom_id),
            created_at=utcnow(),
            source="batch",
            method="POST",
            endpoint=ENDPOINT,
            status_code=200,
            message_id=msg_id if isinstance(msg_id, str) else None,
            model=model if isinstance(model, str) else None,
            model_requested=model if isinstance(model, str) else None,
            stop_reason=stop if isinstance(stop, str) else None,
            usage=Usage.from_raw(raw),
            attribution=replace(self.attribution, tags=list(self.attribution.tags)),
            note=f"batch {self.batch_id} {custom_id}"[:500],
        )
        apply_cost(self.ledger.book, record)
        self.filed += 1
        self.cost_nanousd += record.cost_nanousd or 0
        try:
            self.submit(record)
        except Exception:  # recording must never break the download
            log.exception("could not submit batch result record %s", record.id)

    async def rewrite(self, body: bytes, encoding: str | None) -> bytes:
        """Point ``results_url`` at the gateway; remember or release what the answer says.

        Returns ``body`` itself when nothing changed (the proxy then relays it as is),
        else the new body, uncompressed.
        """
        decomp = _decompressor(encoding)
        try:
            plain = decomp.decompress(body) + decomp.flush() if decomp is not None else body
            doc = orjson.loads(plain)
        except (zlib.error, orjson.JSONDecodeError):
            return body
        if not isinstance(doc, dict):
            return body
        objects = [doc] if doc.get("type") == "message_batch" else doc.get("data")
        if not isinstance(objects, list):
            return body
        changed = False
        ended: list[str] = []
        for obj in objects:
            if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
                continue
            if self.kind == "create" and self.batch_id is None:
                self.batch_id = obj["id"]
                await self.ledger.name(self)
            url = obj.get("results_url")
            upstream = self.ledger.upstream_url
            if self.origin and isinstance(url, str) and url.startswith(upstream + "/"):
                obj["results_url"] = self.origin + url[len(upstream) :]
                changed = True
            counts = obj.get("request_counts")
            if (
                obj.get("processing_status") == "ended"
                and isinstance(counts, dict)
                and counts.get("succeeded") == 0
            ):
                ended.append(obj["id"])
        if ended:
            await self.ledger.release_batches(ended, "ended with nothing succeeded")
        return orjson.dumps(doc) if changed else body

    async def finish(self, record: CallRecord) -> None:
        """After the answer: release a refused creation, settle a complete download."""
        try:
            if self.kind == "create" and self.row is not None and self.batch_id is None:
                await self.ledger.forget(self.row)
            elif (
                self.kind == "results"
                and self._tee is not None
                and not self._tee.broken
                and record.status_code == 200
                and record.complete
                and self.row is not None
            ):
                await self.ledger.settle(self.row, self.filed, self.cost_nanousd)
        except Exception:  # never break the proxied call; the sweep releases later
            log.exception("batch %s: could not settle its budget reservation", self.batch_id)


class BatchLedger:
    """The proxy's ``batches`` hook: budgets and recording for Message Batches."""

    def __init__(
        self,
        *,
        book: PriceBook,
        guard: BudgetGuard,
        budgets: BudgetStore,
        store: BatchStore,
        upstream_url: str,
    ) -> None:
        self.book = book
        self.guard = guard
        self.budgets = budgets
        self.store = store
        self.upstream_url = upstream_url.rstrip("/")
        self._task: asyncio.Task[None] | None = None

    async def __call__(
        self, scope: Scope, receive: Receive, resolved: Resolved, record: CallRecord, submit: Submit
    ) -> BatchCall | None:
        """The side work for a call under ``/v1/messages/batches``, or None."""
        path, method = scope["path"], scope["method"]
        origin = _origin(scope)
        if path == BATCHES and method == "POST":
            body = await read_body(receive)
            call = BatchCall(self, "create", origin, submit, body=body)
            call.row = await self._reserve(resolved, body)
            return call
        match = _RESULTS.match(path)
        if match is not None and method == "GET":
            call = BatchCall(self, "results", origin, submit, batch_id=match.group(1))
            call.attribution = resolved.attribution
            try:
                call.row = await asyncio.to_thread(self.store.owner, match.group(1))
            except SQLAlchemyError as exc:
                log.error("batch creator lookup failed, using the downloader: %s", exc)
            if call.row is not None:
                call.attribution = call.row.attribution
            return call
        if method == "GET" and (path == BATCHES or _ONE.match(path)):
            return BatchCall(self, "object", origin, submit)
        if method == "POST" and path.endswith("/cancel") and _ONE.match(path):
            return BatchCall(self, "object", origin, submit)
        return None

    # -- reserve at creation ----------------------------------------------

    async def _reserve(self, resolved: Resolved, body: bytes) -> BatchRow:
        at = utcnow()
        try:
            requests, amount = await asyncio.to_thread(batch_worst_case, self.book, body, at)
            budgets = await self.guard.budgets()
            claims = self.guard.claims_for(budgets, resolved, at) if amount else []

            def work(tx: BudgetTx) -> BatchRow | Exhausted:
                held: list[Claim] = []
                for claim in sorted(claims, key=lambda c: c.budget.id):
                    tx.ensure_open(claim)
                    outcome = tx.try_reserve(claim, amount)
                    if outcome == "full":
                        for done in held:
                            tx.settle(done, release=amount, spent=0, calls=0)
                        return Exhausted(claim, tx.refuse(claim))
                    if outcome == "reserved":
                        held.append(claim)
                row = BatchRow(
                    id=new_id(),
                    batch_id=None,
                    created_at=at,
                    attribution=resolved.attribution,
                    requests=requests,
                    claims=tuple((c.budget.id, c.period_key) for c in held),
                    reserved_nanousd=amount if held else 0,
                )
                BatchStore.insert(tx.conn, row)
                return row

            outcome = await asyncio.to_thread(self.budgets.transact, work)
        except SQLAlchemyError as exc:
            raise self.guard.unavailable(exc, "batch") from exc
        if isinstance(outcome, Exhausted):
            raise self.guard.refusal(outcome, at)
        return outcome

    async def name(self, call: BatchCall) -> None:
        """Attach Anthropic's id to the creation row (before the client sees the id)."""
        if call.row is None or call.batch_id is None:
            return
        try:
            await asyncio.to_thread(self.store.name, call.row.id, call.batch_id)
        except SQLAlchemyError:
            log.exception("batch %s: could not remember its creator", call.batch_id)

    # -- settle, release, sweep -------------------------------------------

    async def _budgets_by_id(self) -> dict[str, Budget]:
        return {b.id: b for b in await self.guard.budgets()}

    async def settle(self, row: BatchRow, calls: int, spent: int) -> None:
        """Settle a batch at ``spent`` for its ``calls`` results; only the first time counts."""
        by_id = await self._budgets_by_id()
        at = utcnow()

        def work(tx: BudgetTx) -> None:
            seen = BatchStore.take_reservation(tx.conn, row.id, at, settle_spent=spent)
            if seen is None:
                return  # settled before (a second download) or by another process
            for budget_id, period_key in sorted(seen.claims):
                budget = by_id.get(budget_id)
                if budget is None:
                    continue  # deleted since: its counters are gone
                held = Claim(budget, period_key, None)
                # The results are recorded now, so they count in the current period.
                window = period_window(budget.period, at, self.guard.zone)
                if window.key == period_key:
                    tx.settle(held, release=seen.reserved_nanousd, spent=spent, calls=calls)
                    continue
                tx.settle(held, release=seen.reserved_nanousd, spent=0, calls=0)
                now = Claim(budget, window.key, window.start)
                tx.ensure_open(now)
                tx.settle(now, release=0, spent=spent, calls=calls)

        await asyncio.to_thread(self.budgets.transact, work)

    async def _release(self, rows: list[BatchRow], why: str, *, forget: bool = False) -> int:
        by_id = await self._budgets_by_id()
        at = utcnow()

        def work(tx: BudgetTx) -> int:
            released = 0
            for row in rows:
                seen = BatchStore.take_reservation(tx.conn, row.id, at)
                if seen is not None:
                    released += 1
                    for budget_id, period_key in sorted(seen.claims):
                        budget = by_id.get(budget_id)
                        if budget is not None:
                            claim = Claim(budget, period_key, None)
                            tx.settle(claim, release=seen.reserved_nanousd, spent=0, calls=0)
                if forget:
                    BatchStore.forget(tx.conn, row.id)
            return released

        released = await asyncio.to_thread(self.budgets.transact, work)
        if released:
            log.info("released the budget reservation of %d batch(es): %s", released, why)
        return released

    async def forget(self, row: BatchRow) -> None:
        """Anthropic did not create the batch: give its reservation back, drop the row."""
        await self._release([row], "not created upstream", forget=True)

    async def release_batches(self, batch_ids: list[str], why: str) -> None:
        """Release what the named batches still hold (never raises)."""
        try:
            rows = await asyncio.to_thread(self.store.many, batch_ids)
            rows = [r for r in rows if r.reserved_nanousd > 0 and r.settled_at is None]
            if rows:
                await self._release(rows, why)
        except Exception:  # best effort: the sweep catches what this misses
            log.exception("could not release batch reservations")

    async def sweep(self) -> int:
        """Release reservations whose batch can no longer settle; returns how many."""
        at = utcnow()
        rows = await asyncio.to_thread(
            self.store.holding,
            unnamed_before=at - UNNAMED_TIMEOUT,
            created_before=at - RESULTS_RETENTION,
        )
        return await self._release(rows, "results expired or creation never completed")

    def start(self, seconds: float = SWEEP_SECONDS) -> None:
        """Run :meth:`sweep` every ``seconds`` (first run at once) until :meth:`stop`."""

        async def loop() -> None:
            while True:
                try:
                    await self.sweep()
                except Exception:  # housekeeping must outlive a bad run
                    log.exception("batch reservation sweep failed; retrying in %.0fs", seconds)
                await asyncio.sleep(seconds)

        self._task = asyncio.get_running_loop().create_task(loop(), name="spendgate-batch-sweep")

    async def stop(self) -> None:
        """Stop the sweep."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
