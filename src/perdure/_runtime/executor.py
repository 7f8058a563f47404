"""The executor: claims ready instances, drives them, and keeps its lease alive.

One asyncio loop runs every instance this process owns. The heartbeat renews the
executor's lease and its share of the shards (executors sharing a database split
them evenly). The dispatch loop claims what is ready in those shards (new, due, or
left running by a dead executor), starts an activation for each, and sleeps until
the next local wake-up, a nudge, or the poll interval. Instances started in this
process are created already claimed, so they start without a claim round trip.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from perdure._model import crashpoints
from perdure._model.errors import StoreError
from perdure._model.records import (
    TERMINAL,
    Append,
    Beat,
    Claim,
    ExpireExecutor,
    FireSchedule,
    InstanceRow,
    InstanceUpdate,
    LeaseShards,
    Status,
    shard_of,
)
from perdure._runtime import collector, direct, schedules
from perdure._runtime.clock import SystemClock
from perdure._runtime.leases import Liveness, LocalLock, host_name
from perdure._runtime.runner import Activation, End, Runtime, load

log = logging.getLogger("perdure.executor")
CLAIM_BATCH = 100
"""Instances claimed at most per claim; a full claim claims again at once. Small enough that
executors sharing a database split a burst of work between them instead of the first taking it all."""


class Executor:
    def __init__(
        self,
        rt: Runtime,
        *,
        lock_dir: Path | None,
        liveness: Liveness | None = None,
        lease_ttl: float = 10.0,
        poll_interval: float = 0.5,
        max_active: int = 1000,
        max_recoveries: int = 10,
        on_end: Callable[[str, InstanceRow | None], None] = lambda _id, _row: None,
    ) -> None:
        self.rt = rt
        rt.nudge = self.nudge
        rt.lease_epoch = self.lease_epoch
        self.real = SystemClock()
        """Leases and polls run on real time even when durable time is virtual."""
        self.id = f"ex-{uuid.uuid4().hex[:12]}"
        self.host = host_name()
        self.lease_ttl = lease_ttl
        self.poll_interval = poll_interval
        self.steal_after = max(1.0, 4 * poll_interval)
        """Work due this long ago that its shard's executor has not claimed (it is full or slow)
        is claimed by any executor with room."""
        self.max_active = max_active
        self.max_recoveries = max_recoveries
        self.on_end = on_end
        self._lock_dir = lock_dir
        self._lock = LocalLock(lock_dir, self.id) if lock_dir else None
        self._liveness = liveness
        self.active: dict[str, Activation | None] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._starved = False
        self._reserved: set[str] = set()
        self._tokens: dict[str, int] = {}
        """The claim token each active instance is driven under."""
        self._after_active: dict[str, tuple[InstanceRow, bool, int]] = {}
        """Claims of instances whose previous activation had not finished yet."""
        self._unheard: dict[str, tuple[int, float]] = {}
        """Starts made here whose caller never heard how their commit went: id -> (lease epoch
        before the commit, real time until which to look for the instance; see ``unheard``)."""
        self._next_wake: float | None = None
        """The earliest durable wake-up the store knows of (a sleeper, a backoff, a tick)."""
        self._nudge = asyncio.Event()
        self._lease_until = 0.0
        """Real time until which this executor's lease surely holds (a margin before its expiry)."""
        self._epoch = 0
        self.shards: frozenset[int] = frozenset()
        """The shards this executor leases, as of its last beat: it claims their instances."""
        self._stopping = False
        self._loops: list[asyncio.Task[None]] = []
        self._holds_collector = False
        """Whether this executor relaxed the garbage collector's young generation (see ``collector.py``)."""
        self.stats = {"activations": 0, "recoveries": 0, "parked": 0}

    # --- life cycle ------------------------------------------------------------

    async def start(self) -> None:
        if self._lock is not None:
            self._lock.hold()
        elif self._liveness is not None:
            await self._liveness.hold_executor(self.id)
        # The first beat also expires the executors found gone, and claims what is ready then
        # (a dead executor's instances among it): one commit, not three.
        epoch = self.lease_epoch()
        claim = self._claim()
        rows = await self._beat(await self._gone(), claim)
        crashpoints.hit("lease.after_acquire")
        loop = asyncio.get_running_loop()
        self._loops = [
            loop.create_task(self._dispatch_loop(), name="perdure-dispatch"),
            loop.create_task(self._heartbeat_loop(), name="perdure-heartbeat"),
        ]
        collector.hold()
        self._holds_collector = True
        if claim is not None:
            await self._run_claimed(claim, rows, epoch)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming, let running instances reach a wait or an end, release the rest."""
        self._stopping = True
        self._nudge.set()
        for t in self._loops:
            t.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        if self._tasks:
            crashpoints.hit("shutdown.mid_drain")
            # Stop each instance at its next operation, once the steps it runs are recorded;
            # cancelling mid-step would drop results of effects that happen anyway.
            for act in list(self.active.values()):
                if act is not None:
                    act.draining = True
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for act in list(self.active.values()):
                if act is not None and act.task is not None:
                    act.task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=grace)
            self._tasks.clear()  # a task cancelled before it began never took itself out
        try:
            await self.rt.writer.submit((ExpireExecutor(executor=self.id),))
        except StoreError as exc:
            log.warning("could not release executor lease %s: %s", self.id, exc)
        if self._lock is not None:
            self._lock.release()
        if self._holds_collector:
            self._holds_collector = False
            collector.release()

    async def _beat(
        self, expire: Sequence[ExpireExecutor] = (), claim: Claim | None = None
    ) -> list[InstanceRow]:
        """Renew this executor's lease and its share of the shards, and expire those of
        ``expire`` in the same commit (before the shards are shared out, so theirs are free);
        then ``claim``, if any, in it too: the rows it claimed."""
        self.lease_epoch()  # a lapse seen here, before renewing, still counts
        now = self.real.now()
        beat = Beat(executor=self.id, host=self.host, pid=os.getpid(), expires_at=now + self.lease_ttl)
        lease = LeaseShards(executor=self.id, now=now, expires_at=beat.expires_at)
        outcomes = await self.rt.writer.submit((beat, *expire, lease, *(() if claim is None else (claim,))))
        held = outcomes[len(expire) + 1]
        assert isinstance(held, tuple)
        self._lease_until = beat.expires_at - self.lease_ttl / 5
        self._reshard(frozenset(held))
        if expire:
            self._nudge.set()  # their instances are claimable now
        rows = outcomes[-1] if claim is not None else []
        assert isinstance(rows, list)
        return rows

    def _reshard(self, held: frozenset[int]) -> None:
        """Take in the shards this executor holds now. Its instances in shards it gave up (to
        an executor that joined) or lost (its lease lapsed) unload at their next operation,
        for the shard's new holder to claim; shards it gained may have work ready."""
        lost, gained = self.shards - held, held - self.shards
        self.shards = held
        if lost:
            log.info("executor %s gives up shards %s", self.id, sorted(lost))
            for act in self.active.values():
                if act is not None and shard_of(act.row) in lost:
                    act.draining = True
        if gained:
            self._nudge.set()

    def lease_epoch(self) -> int:
        """Moves on whenever the lease may have lapsed: this process was paused, starved or cut
        off from the database past its expiry, and other executors may have taken its instances.
        Activations prove their claim (an empty fenced write) before their next step then."""
        if self.real.now() >= self._lease_until:
            self._epoch += 1
            self._lease_until = float("inf")  # one move per lapse; the next beat sets it again
        return self._epoch

    async def _heartbeat_loop(self) -> None:
        while True:
            await self.real.sleep_until(self.real.now() + self.lease_ttl / 3)
            self.rt.actors.sweep(self.rt.clock.now())
            try:
                gone = await self._gone()
            except StoreError as exc:  # renew the lease all the same
                log.warning("could not look for executors that are gone: %s", exc)
                gone = []
            try:
                await self._beat(gone)
            except StoreError as exc:
                log.warning("heartbeat failed: %s", exc)

    async def _gone(self) -> list[ExpireExecutor]:
        """The expiries of the executors whose process is gone (their lock is free): on this
        machine by their lock files, anywhere by the database's liveness locks."""
        gone_ones: list[ExpireExecutor] = []
        if self._lock_dir is None and self._liveness is None:
            return gone_ones
        now = self.real.now()
        for row in await self.rt.store.list_executors():
            if row.expires_at < now or row.id == self.id:
                continue  # expired already (claimable), or ourselves
            if self._liveness is not None:
                try:
                    gone = await self._liveness.executor_gone(row.id)
                except StoreError as exc:  # not known now: the next heartbeat asks again
                    log.warning("could not tell whether executor %s is alive: %s", row.id, exc)
                    continue
            elif row.host == self.host:
                assert self._lock_dir is not None
                gone = LocalLock(self._lock_dir, row.id).holder_is_dead()
            else:
                continue  # another machine's lock files are not ours to see
            if gone:
                log.info("executor %s (pid %d) is gone; recovering its instances", row.id, row.pid)
                gone_ones.append(ExpireExecutor(executor=row.id))
        return gone_ones

    # --- dispatch --------------------------------------------------------------

    def nudge(self) -> None:
        """Something may be ready: claim now rather than at the next poll."""
        self._nudge.set()

    async def _dispatch_loop(self) -> None:
        clock = self.rt.clock
        while not self._stopping:
            self._nudge.clear()
            try:
                await self._fire_schedules()
                await self._claim_and_run()
                if self._unheard:
                    await self._look_for_unheard()
                # Sleepers cost no memory here: the store keeps their wake-ups, ordered.
                self._next_wake = await self.rt.store.next_wake_at()
            except StoreError as exc:
                log.warning("claiming failed: %s", exc)
            # Wake at the next wake-up (durable time), the poll (real time: work other
            # processes start), or a nudge, whichever comes first.
            waits = [
                asyncio.ensure_future(
                    self.real.sleep_until(self.real.now() + self.poll_interval, self._nudge)
                )
            ]
            if self._next_wake is not None:
                waits.append(asyncio.ensure_future(clock.sleep_until(self._next_wake, self._nudge)))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()

    async def _fire_schedules(self) -> None:
        """Start the due ticks of schedules; a compare-and-set makes each tick start once."""
        now = self.rt.clock.now()
        fired = False
        for row in await self.rt.store.due_schedules(now, 100):
            previous_running = False
            if row.last_instance is not None and row.overlap != "allow_all":
                last = await self.rt.store.get_instance(row.last_instance)
                previous_running = last is not None and last.status not in TERMINAL
            p = schedules.plan(row, now, previous_running)
            if not p.starts and p.next_at == row.next_at and p.buffered_at == row.buffered_at:
                continue
            starts = tuple(
                InstanceRow(id=schedules.tick_id(row.id, t), name=row.workflow, status=Status.PENDING,
                            input=row.input, created_at=now, updated_at=now, wake_at=now)
                for t in p.starts
            )  # fmt: skip
            fire = FireSchedule(
                schedule_id=row.id, expected_next_at=row.next_at, expected_buffered_at=row.buffered_at,
                new_next_at=p.next_at, buffered_at=p.buffered_at, starts=starts, now=now,
            )  # fmt: skip
            fired = (await self.rt.writer.submit((fire,)))[0] is True or fired
        if fired:
            self._nudge.set()

    def _claim(self) -> Claim | None:
        """A claim of as much ready work as there is room for; None when full."""
        room = self.max_active - len(self.active) - len(self._reserved)
        if room <= 0:
            self._starved = True
            return None
        now = self.rt.clock.now()
        return Claim(
            executor=self.id,
            claim_id=uuid.uuid4().hex,
            now=now,
            lease_now=self.real.now(),
            limit=min(room, CLAIM_BATCH),
            overdue=now - self.steal_after,
        )

    async def _claim_and_run(self) -> None:
        claim = self._claim()
        if claim is None:
            return
        epoch = self.lease_epoch()  # before the claim: a lapse while it commits counts against it
        rows = (await self.rt.writer.submit((claim,)))[0]
        assert isinstance(rows, list)
        await self._run_claimed(claim, rows, epoch)

    async def _run_claimed(self, claim: Claim, rows: list[InstanceRow], epoch: int) -> None:
        """Drive the rows ``claim`` took (``epoch``: ``lease_epoch()`` before its commit)."""
        if not rows:
            return
        crashpoints.hit("dispatch.after_claim")
        lag = self.rt.stats.claim_lag
        for n, row in enumerate(rows):
            lag.observe(max(0.0, claim.now - (row.wake_at if row.wake_at is not None else claim.now)))
            if n == 1:
                crashpoints.hit("recovery.mid_loop")
            if row.recoveries > 0 and row.status is Status.RUNNING:
                self.stats["recoveries"] += 1
            if row.recoveries > self.max_recoveries:
                await self._park_poison(row)
                continue
            # Token 1: its first claim ever. Every write is fenced by a claim, so it has
            # no journal yet and needs no reads (pending starts, children, ticks).
            self.run(row, epoch=epoch, fresh=row.token == 1)
        if len(rows) == claim.limit:
            self._nudge.set()  # more may be ready

    async def _park_poison(self, row: InstanceRow) -> None:
        reason = (
            f"poison: the instance was recovered {row.recoveries} times after crashes "
            f"(limit {self.max_recoveries}); fix the cause, then resume it"
        )
        log.warning("parking %s: %s", row.id, reason)
        update = InstanceUpdate(status=Status.PARKED, updated_at=self.rt.clock.now(), park_reason=reason)
        await self.rt.writer.submit((Append(instance_id=row.id, token=row.token, update=update),))
        self.stats["parked"] += 1
        self.on_end(row.id, None)

    def reserve(self, instance_id: str) -> bool:
        """Hold a slot for an instance about to be started here; False when full."""
        if len(self.active) + len(self._reserved) < self.max_active:
            self._reserved.add(instance_id)
            return True
        self._starved = True  # work is waiting for room: claim as soon as some frees up
        return False

    def unreserve(self, instance_id: str) -> None:
        self._reserved.discard(instance_id)

    def run(self, row: InstanceRow, *, epoch: int, fresh: bool = False) -> None:
        """Drive ``row`` (claimed by this executor under ``row.token``).

        ``epoch``: ``lease_epoch()`` read before the commit that claimed or created it. If the
        lease lapsed since, another executor may have taken it over: the activation proves
        its claim before running a step (a pause between that commit and the activation
        would otherwise let this zombie run a step another executor recorded meanwhile).
        ``fresh``: created by this process a moment ago, so there is no journal to read.
        """
        self._reserved.discard(row.id)
        if self._stopping:
            return
        if row.id in self.active:
            # The same claim again (a repeated start): it is being driven already. A newer
            # claim (a higher token) came while the last activation is still finishing: it
            # has just unloaded and is due at once. Run that one when the last is gone, never
            # drop it, or it would stay 'running' under this live executor, driven by nobody.
            queued = self._after_active.get(row.id)
            newest = queued[0].token if queued is not None else self._tokens[row.id]
            if row.token > newest:
                self._after_active[row.id] = (row, fresh, epoch)
            return
        self.active[row.id] = None
        self._tokens[row.id] = row.token
        task = asyncio.get_running_loop().create_task(
            self._drive(row, fresh, epoch), name=f"perdure:{row.id}"
        )
        self._tasks.add(task)  # _drive takes it out as it ends (see there)

    async def _drive(self, row: InstanceRow, fresh: bool, epoch: int) -> None:
        self.stats["activations"] += 1
        end: End = End.ABORTED
        wake_at: float | None = None
        final: InstanceRow | None = None
        try:
            loaded = await load(self.rt, row, fresh=fresh)
            if isinstance(loaded, str):
                end = await self._park(row, loaded)
                return
            act, args, kwargs = loaded
            act.lease_epoch = epoch
            self.active[row.id] = act
            act.draining = self._stopping
            end, wake_at = await act.drive(args, kwargs)
            if act.final is not None:
                u = act.final
                final = msgspec.structs.replace(
                    row, status=u.status, updated_at=u.updated_at, output=u.output, error=u.error
                )
        except asyncio.CancelledError:
            live = self.active.get(row.id)
            end = await self._release(row, live.take_deferred() if live is not None else ())
        except Exception as exc:  # noqa: BLE001 - the instance stays ours; drive it again later
            log.warning("instance %s aborted (%s: %s); retrying it", row.id, type(exc).__name__, exc)
        finally:
            # Here, not in a done callback: that would be left in the loop's ready queue as the
            # workflow's caller wakes, and the writer then takes it for another writer's work
            # and sends the caller's next commit through its task (see ``Writer.write``).
            self._tasks.discard(asyncio.current_task())
            self.active.pop(row.id, None)
            self._tokens.pop(row.id, None)
            self._after(row, epoch, end, wake_at, final)
            queued = self._after_active.pop(row.id, None)
            if queued is not None:
                self.run(queued[0], fresh=queued[1], epoch=queued[2])

    def _after(
        self, row: InstanceRow, epoch: int, end: End, wake_at: float | None, final: InstanceRow | None = None
    ) -> None:
        if end is End.STALE or (end is End.WAITING and wake_at is not None) or row.actor_id is not None:
            # Read the earliest wake-up again; and a stale end may be this executor's own
            # unload whose acknowledgement was lost (it landed, the retry found the token
            # moved): the instance is due now, so claim now rather than at the next poll.
            # An actor invocation's end gives the next one in its inbox its turn: claim it.
            self._nudge.set()
        elif end is End.ABORTED and not self._stopping:
            loop = asyncio.get_running_loop()
            loop.call_later(1.0, functools.partial(self.run, row, epoch=epoch))
        if end is not End.ABORTED:
            self.on_end(row.id, final)
        if self._starved:
            self._starved = False
            self._nudge.set()

    async def _park(self, row: InstanceRow, reason: str) -> End:
        log.warning("parking %s: %s", row.id, reason)
        update = InstanceUpdate(status=Status.PARKED, updated_at=self.rt.clock.now(), park_reason=reason)
        outcome = (
            await self.rt.writer.submit((Append(instance_id=row.id, token=row.token, update=update),))
        )[0]
        self.stats["parked"] += 1
        return End.PARKED if getattr(outcome, "ok", False) else End.STALE

    async def _release(self, row: InstanceRow, deferred: tuple[Append, ...] = ()) -> End:
        """Shutdown interrupted the instance: hand it back, due now, for any executor, with
        the step records it had not committed yet (their steps did run)."""
        now = self.rt.clock.now()
        update = InstanceUpdate(status=Status.WAITING, updated_at=now, wake_at=now)
        try:
            await self.rt.writer.submit(
                (*deferred, Append(instance_id=row.id, token=row.token, update=update))
            )
        except StoreError as exc:
            log.warning("could not release %s: %s", row.id, exc)
        return End.DRAINED

    def unheard(self, instance_id: str, epoch: int) -> None:
        """A start made here (its instance created already claimed by this executor) whose
        caller failed before it heard how the commit went: cancelled, say, or the store's
        answer lost. If the instance was created all the same, no other executor will ever
        claim it: the dispatcher looks for it at each round for a lease's time, and runs it.
        ``epoch``: as for ``run``, read before that commit."""
        self._unheard[instance_id] = (epoch, self.real.now() + self.lease_ttl)
        self._nudge.set()

    async def _look_for_unheard(self) -> None:
        now = self.real.now()
        for instance_id, (epoch, until) in list(self._unheard.items()):
            row = await self.rt.store.get_instance(instance_id)
            if row is not None:
                self.adopt(row, epoch)
            if row is not None or now >= until:
                del self._unheard[instance_id]

    def adopt(self, row: InstanceRow, epoch: int) -> None:
        """Run ``row`` if this executor created it already claimed: a retried commit whose first
        attempt landed finds it existing, and no other executor will ever claim it. ``epoch``:
        as for ``run``, read before that commit."""
        if row.owner == self.id and row.status is Status.RUNNING:
            self.run(row, epoch=epoch)

    def call_direct(self, row: InstanceRow, arguments: dict[str, Any]) -> Awaitable[InstanceRow | None]:
        """Run a client's actor call ``row`` at once, recorded in one commit, if its actor is
        idle (see ``direct.py``): its ended row, or ``None`` to enqueue it the usual way.
        (Not a coroutine of its own: the call's coroutine is ``direct.call_direct``'s.)"""
        if self._stopping:
            stopped: asyncio.Future[InstanceRow | None] = asyncio.get_running_loop().create_future()
            stopped.set_result(None)
            return stopped
        return direct.call_direct(self.rt, row, arguments)

    def local(self, instance_id: str) -> Activation | None:
        """The activation of ``instance_id`` if this executor has it loaded."""
        return self.active.get(instance_id)

    def cancel_local(self, instance_id: str) -> bool:
        act = self.active.get(instance_id)
        if act is None:
            return False
        act.request_cancel()
        return True
