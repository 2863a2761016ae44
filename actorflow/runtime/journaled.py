"""The runner's durable dispatches: idempotency by event id, recovery, waiting and resuming.

`JournaledDispatches` is the part of the `Runner` that a journal (`[runtime] journal`) switches
on; without a journal the runner never calls it on the dispatch path. It records each dispatch
before sending it (`journal.begin`) and decides, by the record, what a dispatch of an event id
does (DESIGN "Durable dispatches (journal) and interrupts"):
- new: it runs (the supervisor records its steps and its end);
- finished, or interrupted: nothing runs; the recorded result is returned (a failed one raises
  the recorded error type, with `.result`);
- running in this runner: the caller joins it (the same future), it does not run twice;
- running under a lease that expired, or one of this runner's that is not in flight (its
  supervisor died): claimed, and run on from its last recorded step;
- running in another live runner: the caller waits for its result (polling the journal; if
  that runner dies, this one's `JournalKeeper` takes the dispatch over once the lease expires).

A dispatch ends up finished in the journal without a result from its supervisor in two cases,
failed with a `DispatchError` (recorded, so neither the keeper nor a later dispatch runs it again):
- its stream's consumer went away (stopped iterating, an HTTP client hung up): it is cancelled;
- its run failed in the runtime `MAX_RUNS` times (the supervisor's task raised, e.g. its journal
  writes failed, or the supervisor died): each such failure leaves the dispatch running in the
  journal, so the keeper reruns it (logged) until then.

Every dispatch this runner has in flight is in `active` (event id → future of its
`DispatchOutcome`) from before `begin` until it ended, so the keeper never claims it meanwhile.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from actorflow.config import OrchestrationConfig
from actorflow.events import DispatchResult, Event, State, describe_error
from actorflow.exceptions import (
    ActorflowError, DispatchError, DispatchNotFoundError, DispatchNotResumableError, DispatchTimeoutError,
)
from actorflow.runtime.durable import (
    RESUME_STEP, JournalKeeper, event_of, event_record, outcome_parts, replay_of, result_record, settings_of,
    settings_record,
)
from actorflow.runtime.steps import Replay
from actorflow.runtime.streaming import iterate, iterate_async
from actorflow.runtime.supervisor import DispatchOutcome
from actorflow.updates import DispatchUpdate

if TYPE_CHECKING:
    from actorflow.journal import DispatchRecord, Journal
    from actorflow.runtime.runner import Runner

__all__ = ["JournaledDispatches", "settle", "MAX_RUNS"]

logger = logging.getLogger(__name__)

_POLL_SECONDS = (0.05, 0.5)  # first and longest pause between two looks at another runner's dispatch

MAX_RUNS = 3
"""Runs of a dispatch that fail in the runtime (not a failed result: its supervisor's task raised)
before it is recorded as failed instead of being run again."""


class JournaledDispatches:
    """Dispatches recorded in a journal, for one runner (see the module docstring)."""

    def __init__(self, runner: Runner, journal: Journal, lease_seconds: float) -> None:
        self.runner = runner
        self.journal = journal
        self.active: dict[str, concurrent.futures.Future[DispatchOutcome]] = {}
        self._failures: dict[str, tuple[int, str]] = {}  # event id → (runs failed in the runtime, the last error)
        self._lock = threading.Lock()
        self.keeper = JournalKeeper(journal, lease_seconds, self._recover, self.is_active)

    @property
    def owner(self) -> str:
        return self.keeper.owner

    def start(self) -> None:
        self.keeper.start()

    def stop(self) -> None:
        """Stop renewing, release this runner's leases (others may take its dispatches now)."""
        self.keeper.stop()
        self.journal.close()

    def is_active(self, event_id: str) -> bool:
        return event_id in self.active

    # -- dispatching -------------------------------------------------------------------------

    def submit(
        self, event: Event, settings: OrchestrationConfig | None, traceparent: str | None = None, *,
        streamed: bool = False,
    ) -> tuple[concurrent.futures.Future[DispatchOutcome], Any]:
        """The future outcome of dispatching `event` (see the module docstring), and the
        supervisor's streaming generator when `streamed` and the dispatch runs here (else None)."""
        with self._lock:
            joined = self.active.get(event.id)
            if joined is None:
                future = self.active[event.id] = concurrent.futures.Future()
        if joined is not None:
            return joined, None
        try:
            created, record = self.journal.begin(
                event.id, event_record(event), settings=settings_record(settings), owner=self.owner,
                lease_seconds=self.keeper.lease,
            )
            if created:
                return future, self._run(event, settings, None, future, streamed, traceparent)
            if record.status == "running" and (claimed := self.keeper.claim(event.id)) is not None:
                return future, self._run(event_of(claimed.event), settings_of(claimed.settings), replay_of(claimed),
                                         future, streamed, traceparent)
            self._forget(event.id, future)
            if record.status == "running":
                return self._watch(event.id), None
            future.set_result(_recorded(record))
        except BaseException as err:
            self._forget(event.id, future)
            settle(future, error=err)
        return future, None

    def _run(
        self, event: Event, settings: OrchestrationConfig | None, replay: Replay | None,
        future: concurrent.futures.Future, streamed: bool, traceparent: str | None = None,
    ) -> Any:
        """Send the dispatch to the supervisor; `future` settles when it ends. A rerun of one
        that failed in the runtime `MAX_RUNS` times is recorded failed instead (returns None)."""
        runner = self.runner
        failed, last = self._failures.get(event.id, (0, ""))
        if replay is not None and failed >= MAX_RUNS:
            error = DispatchError(f"dispatch {event.id} failed in the runtime {failed} times and is not run again; "
                                  f"the last time: {last}")
            logger.error("%s", error)
            self._end(event, settings, replay, future, error)
            return None
        if streamed:
            generator = runner._submit_stream_to(event, settings, traceparent, replay)
            return generator  # settled by stream_ended()
        ref = runner._submit(event, settings=settings, traceparent=traceparent, replay=replay)

        def ended(ray_future: concurrent.futures.Future) -> None:
            runner._done(ref)
            try:
                outcome = ray_future.result()
            except BaseException as err:
                error = err if isinstance(err, ActorflowError) else runner._translate(err, event)
                self._failed(event.id, error)
                self._forget(event.id, future)
                settle(future, error=error)
                return
            self._failures.pop(event.id, None)
            self._forget(event.id, future)  # the journal has the end now: later callers read it there
            settle(future, result=outcome)

        ref.future().add_done_callback(ended)
        return None

    # -- streaming ---------------------------------------------------------------------------

    def stream(
        self, event: Event, settings: OrchestrationConfig | None, traceparent: str | None = None
    ) -> Iterator[DispatchUpdate]:
        """`runner.stream`: a dispatch that runs here streams; one that finished, or runs
        elsewhere, yields only its `dispatch_finished`."""
        runner = self.runner
        future, generator = self.submit(event, settings, traceparent, streamed=True)
        if generator is None:
            result = runner._outcome(future, event, runner._wait_limit(settings)).result  # also of a failed one
            yield DispatchUpdate("dispatch_finished", event.id, result.duration, result=result)
            return
        started, left, error = time.perf_counter(), False, None
        try:
            yield from iterate(generator, lambda: runner._done(generator.completed()))
        except Exception as err:
            error = err
            raise
        except BaseException:  # GeneratorExit (closed early), KeyboardInterrupt: the consumer went away
            left = True
            raise
        finally:
            self.stream_ended(event, settings, future, time.perf_counter() - started, left, error)

    async def stream_async(
        self, event: Event, settings: OrchestrationConfig | None, traceparent: str | None = None
    ) -> AsyncIterator[DispatchUpdate]:
        """`runner.stream_async`, as `stream`."""
        runner = self.runner
        future, generator = await asyncio.to_thread(self.submit, event, settings, traceparent, streamed=True)
        if generator is None:
            outcome = await asyncio.to_thread(runner._outcome, future, event, runner._wait_limit(settings))
            yield DispatchUpdate("dispatch_finished", event.id, outcome.result.duration, result=outcome.result)
            return
        started, left, error = time.perf_counter(), False, None
        updates = iterate_async(generator, lambda: runner._done(generator.completed()))
        try:
            async for update in updates:
                yield update
        except Exception as err:
            error = err
            raise
        except BaseException:  # GeneratorExit (closed early), CancelledError: the consumer went away
            left = True
            raise
        finally:
            await updates.aclose()  # cancels the supervisor's generator now, not when collected
            args = (event, settings, future, time.perf_counter() - started, left, error)
            threading.Thread(target=self.stream_ended, args=args, daemon=True).start()  # journal I/O

    def stream_ended(
        self, event: Event, settings: OrchestrationConfig | None, future: concurrent.futures.Future,
        duration: float, left: bool, error: BaseException | None,
    ) -> None:
        """A streamed dispatch's generator ended: settle its joiners from the journal. One still
        running there is cancelled for good when the consumer `left` (recorded failed, never run
        again), else its run failed in the runtime (`error`): the keeper reruns it."""
        try:
            record = self.journal.load(event.id)
            if record is not None and record.status == "running" and left:
                cancelled = DispatchError(f"dispatch {event.id} was cancelled: the consumer of its stream went away")
                self._end(event, settings, replay_of(record), future, cancelled, duration)
                return
            if record is not None and record.status != "running":
                self._failures.pop(event.id, None)
                self._forget(event.id, future)
                settle(future, result=_recorded(record))
                return
            if error is not None:
                self._failed(event.id, error)
            self._forget(event.id, future)
            settle(future, error=error or ActorflowError(f"the streamed dispatch of {event.id} was cancelled"))
        except BaseException as err:
            self._forget(event.id, future)
            settle(future, error=err)

    def _failed(self, event_id: str, error: BaseException) -> None:
        """A run of the dispatch failed in the runtime and left it running in the journal: count
        it (`_run` records it failed at the `MAX_RUNS`th); the keeper reruns it meanwhile."""
        with self._lock:
            failed = self._failures.get(event_id, (0, ""))[0] + 1
            self._failures[event_id] = (failed, describe_error(error))
        logger.warning("dispatch %s failed in the runtime (%d of at most %d runs)%s: %s", event_id, failed, MAX_RUNS,
                       "; the journal keeper runs it again" if failed < MAX_RUNS else "", describe_error(error))

    def _end(
        self, event: Event, settings: OrchestrationConfig | None, replay: Replay,
        future: concurrent.futures.Future, error: DispatchError, duration: float = 0.0,
    ) -> None:
        """Record the dispatch finished, failed with `error` (with its recorded runs and the
        event's state), unless it ended meanwhile; settle `future` with what the journal holds."""
        result = DispatchResult(
            state=State(dict(event.data), dict(event.metadata)),
            mode=(settings or self.runner.config.orchestration).mode, event_id=event.id,
            session_id=event.session_id, duration=duration, runs=[run for run, _ in replay.steps.values()],
            ok=False, error=describe_error(error),
        )
        error.result = result
        try:
            if self.journal.finish(event.id, result_record(result, error), if_running=True):
                outcome = DispatchOutcome(result, error)
            else:  # it ended meanwhile
                outcome = _recorded(self.journal.load(event.id))
        finally:  # recorded or not, the keeper may take it now (and retries a give-up that failed)
            self._forget(event.id, future)
        self._failures.pop(event.id, None)
        settle(future, result=outcome)

    def _forget(self, event_id: str, future: concurrent.futures.Future) -> None:
        with self._lock:
            if self.active.get(event_id) is future:
                del self.active[event_id]

    def _recover(self, record: DispatchRecord) -> None:
        """The keeper claimed an unfinished dispatch: run it on from its recorded steps."""
        if not self.runner.started:
            return  # stopping: the lease is released at stop
        future: concurrent.futures.Future[DispatchOutcome] = concurrent.futures.Future()
        with self._lock:
            if record.event_id in self.active:
                return
            self.active[record.event_id] = future
        logger.info("resuming dispatch %s from %d recorded steps", record.event_id, len(record.steps))
        try:
            self._run(event_of(record.event), settings_of(record.settings), replay_of(record), future, False)
        except BaseException as err:
            self._forget(record.event_id, future)
            settle(future, error=err)
            raise

    def _watch(self, event_id: str) -> concurrent.futures.Future[DispatchOutcome]:
        """A future settled when another runner's dispatch ends (a thread polls the journal)."""
        future: concurrent.futures.Future[DispatchOutcome] = concurrent.futures.Future()

        def poll() -> None:
            pause = _POLL_SECONDS[0]
            while self.runner.started:
                try:
                    with self._lock:
                        ours = self.active.get(event_id)
                    if ours is not None:  # taken over by this runner meanwhile
                        ours.add_done_callback(lambda done: _copy(done, future))
                        return
                    record = self.journal.load(event_id)
                    if record is None:
                        raise DispatchNotFoundError(f"no dispatch {event_id!r} in the journal", event_id=event_id)
                    if record.status != "running":
                        settle(future, result=_recorded(record))
                        return
                except BaseException as err:
                    settle(future, error=err)
                    return
                time.sleep(pause)
                pause = min(_POLL_SECONDS[1], pause * 2)
            settle(future, error=ActorflowError("the runner stopped before this dispatch finished"))

        threading.Thread(target=poll, name=f"actorflow-wait-{event_id}", daemon=True).start()
        return future

    # -- reading, waiting, resuming ----------------------------------------------------------

    def pending(self) -> list[str]:
        return [record.event_id for record in self.journal.unfinished(("running", "interrupted"))]

    def result(self, event_id: str) -> DispatchResult | None:
        record = self.journal.load(event_id)
        if record is None or record.status == "running" or record.result is None:
            return None
        return outcome_parts(record.result)[0]

    def wait(self, event_id: str, timeout: float | None) -> DispatchOutcome:
        with self._lock:
            future = self.active.get(event_id)
        if future is None:
            record = self.journal.load(event_id)
            if record is None:
                raise DispatchNotFoundError(f"no dispatch {event_id!r} in the journal", event_id=event_id)
            if record.status != "running":
                return _recorded(record)
            future = self._watch(event_id)
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError as err:
            raise DispatchTimeoutError(f"dispatch {event_id} did not end within {timeout}s") from err

    def resume(self, event_id: str, data: Mapping[str, Any]) -> DispatchOutcome:
        """Claim the interrupted dispatch and run it on with `data`; its outcome."""
        future: concurrent.futures.Future[DispatchOutcome] = concurrent.futures.Future()
        with self._lock:
            if event_id in self.active:
                raise _not_resumable(event_id, "running")
            self.active[event_id] = future
        try:
            record = self.journal.load(event_id)
            if record is None:
                raise DispatchNotFoundError(f"no dispatch {event_id!r} in the journal", event_id=event_id)
            if record.status != "interrupted":
                raise _not_resumable(event_id, record.status)
            claimed = self.keeper.claim(event_id)
            if claimed is None:  # another runner resumed it first
                raise _not_resumable(event_id, "running")
            replay = replay_of(claimed, dict(data))
            if replay.resume_step is not None:  # a crash from here on recovers with the data
                self.journal.record_step(event_id, RESUME_STEP + replay.resume_step, {}, {"data": replay.resume_data})
            self._run(event_of(claimed.event), settings_of(claimed.settings), replay, future, False)
        except BaseException:
            self._forget(event_id, future)
            raise
        return future.result()


def _recorded(record: DispatchRecord) -> DispatchOutcome:
    return DispatchOutcome(*outcome_parts(record.result or {}))


def _not_resumable(event_id: str, status: str) -> DispatchNotResumableError:
    why = "it finished" if status == "finished" else "it is running"
    return DispatchNotResumableError(
        f"dispatch {event_id!r} cannot be resumed: {why} (only an interrupted dispatch can)",
        event_id=event_id, status=status,
    )


def settle(future: concurrent.futures.Future, *, result: Any = None, error: BaseException | None = None) -> None:
    """Resolve `future` unless another thread already did."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:
        pass


def _copy(source: concurrent.futures.Future, target: concurrent.futures.Future) -> None:
    error = source.exception()
    settle(target, result=None if error else source.result(), error=error)
