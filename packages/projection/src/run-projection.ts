import {
  backoffDelay,
  type HealthCheck,
  type HealthReport,
  healthReport,
  isPersistenceError,
} from '@cairn/actor-core';
import { Checkpointer } from './checkpointer';
import { openSource } from './projection-admin';
import { ProjectionFailedError, ProjectionRunningError } from './projection-errors';
import {
  describeSource,
  type ProjectionContext,
  type ProjectionOptions,
  type ResolvedProjectionOptions,
  resolveProjectionOptions,
} from './projection-options';
import { decodeStatus, encodeStatus } from './projection-records';
import {
  canTransact,
  canTransactAsync,
  type DeletionEnvelope,
  type EventEnvelope,
  type EventQuery,
  keepsProjectionRecords,
  type ProjectionLock,
} from './read-side';
import { claimName, releaseName } from './running-projections';

/** The context of a handler outside an asynchronous transaction. */
const NO_CONTEXT: ProjectionContext = Object.freeze({});

/** running: reading and handling events; stopped: by `stop()` or, with `live: false`, at the end; failed: gave up. */
export type ProjectionState = 'running' | 'stopped' | 'failed';

/** How a projection ended; `done` resolves to it (it never rejects). */
export type ProjectionEnd =
  | { readonly state: 'stopped' }
  | { readonly state: 'failed'; readonly error: ProjectionFailedError };

/** A projection's numbers at one moment (also exposed to Prometheus by @cairn/metrics). */
export interface ProjectionMetrics {
  readonly name: string;
  /** "all events", `tag "T"` or `persistenceId "P"`. */
  readonly source: string;
  readonly state: ProjectionState;
  /** Events whose handler resolved since this instance started. */
  readonly eventsHandled: number;
  /** Offset of the last event handled (or the one it started from), undefined before any. */
  readonly lastOffset: string | undefined;
  /** Offset last stored in the offset store: where a restart would resume. */
  readonly savedOffset: string | undefined;
  /**
   * Milliseconds from the timestamp of the last handled event to now (undefined before the first). While
   * events flow this is how far the read model trails the journal; when nothing is written it grows
   * with the quiet time, so read it together with the journal's appends.
   */
  readonly lagMs: number | undefined;
  /**
   * How far behind the journal the projection is, in milliseconds: while an event is in hand (being
   * handled or retried), now minus that event's timestamp; otherwise how old the last handled event was
   * when its handler resolved (small once caught up; large while catching up). 0 before the first event.
   * Unlike `lagMs` it does not grow while nothing is written.
   */
  readonly behindMs: number;
  /** Handler, query and checkpoint retries (each one an error that was retried after a backoff). */
  readonly retries: number;
  /** Offsets saved. */
  readonly checkpoints: number;
}

/** What `runProjection` resolves to. */
export interface ProjectionHandle {
  readonly name: string;
  readonly state: ProjectionState;
  /** Set when the projection failed: which event, how many attempts, and the last error as `cause`. */
  readonly error: ProjectionFailedError | undefined;
  /** Resolves once the projection ended (stopped or failed); never rejects. */
  readonly done: Promise<ProjectionEnd>;
  /**
   * Ends the live query, lets the event in hand finish (its handler is not interrupted), saves the offset
   * of the last handled event and releases the name. Idempotent. Rejects with ProjectionFailedError when
   * that final save failed (the offset then stays at the previous save: events are offered again,
   * never lost).
   */
  stop(): Promise<void>;
  metrics(): ProjectionMetrics;
  /**
   * Synchronous and cheap, for a health endpoint beside `system.health()`: `projection.<name>.state` (ok
   * while running, degraded once stopped, failed when it gave up) and `projection.<name>.lag` (degraded
   * when `behindMs` passes `healthyLagMs`, default 60 s; its value in seconds).
   */
  health(): HealthReport;
}

/**
 * Starts a projection: reads `source` from the saved offset of `name` (from the first event when none
 * is saved) and calls `handler` for each event, one at a time, in the journal's order, live by default.
 *
 * At-least-once: an offset is saved only after the handler resolved for that event and for every
 * earlier one (every `checkpointEvery` events, at the latest `checkpointAfterMs` after an unsaved one, and
 * on stop), so after a crash the projection resumes at the last saved offset and offers the events
 * after it again. A failing event is retried with backoff up to `maxRetries`; then the projection stops,
 * reports itself failed (state, `error`, `done`), and the event stays the next one to handle: no event is
 * ever skipped silently.
 *
 * One instance per name: a second `runProjection` with a name that runs on the same offset store in
 * this process rejects with ProjectionRunningError, and so does one in another process where the store
 * keeps projection records and locks (`capabilities.projectionRecords`). Bad options reject with TypeError or
 * RangeError before anything starts.
 */
export async function runProjection<M = unknown, E = M>(
  options: ProjectionOptions<M, E>,
): Promise<ProjectionHandle> {
  const resolved = resolveProjectionOptions(options);
  const { name, offsets } = resolved;
  if (!claimName(offsets, name)) throw new ProjectionRunningError(name, 'in this process');
  let lock: ProjectionLock | undefined;
  try {
    if (keepsProjectionRecords(offsets)) {
      try {
        lock = await offsets.lockProjection(name);
      } catch (e) {
        if (isPersistenceError(e, 'ERR_JOURNAL_LOCKED') || isPersistenceError(e, 'ERR_PROJECTION_RUNNING')) {
          throw new ProjectionRunningError(name, 'in another process', { cause: e });
        }
        throw e;
      }
    }
    const start = await offsets.load(name);
    if (keepsProjectionRecords(offsets)) {
      const previous = decodeStatus(await offsets.loadStatus(name));
      await offsets.saveStatus(
        name,
        encodeStatus({
          state: 'running',
          source: resolved.source,
          updatedAt: Date.now(),
          pid: process.pid,
          ...(previous?.lastEventTimestamp === undefined
            ? {}
            : { lastEventTimestamp: previous.lastEventTimestamp }),
          ...(previous?.skipped ? { skipped: previous.skipped } : {}),
        }),
      );
    }
    const projection = new Projection(resolved, start, lock);
    return projection.handle;
  } catch (e) {
    try {
      await lock?.release();
    } finally {
      releaseName(offsets, name);
    }
    throw e;
  }
}

const STOPPED = Symbol('stopped');

class Projection<M, E> {
  private state: ProjectionState = 'running';
  private error: ProjectionFailedError | undefined;
  private stopRequested = false;
  private controller: AbortController | undefined;
  private sleeping: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  private readonly checkpointer: Checkpointer;
  private eventsHandled = 0;
  private retries = 0;
  private lastEventTimestamp: number | undefined;
  /** The timestamp of the event being handled (or retried), undefined between events. */
  private inHand: number | undefined;
  /** How old the last handled event was when its handler resolved. */
  private lastDelayMs = 0;
  private readonly done: Promise<ProjectionEnd>;
  readonly handle: ProjectionHandle;

  constructor(
    private readonly o: ResolvedProjectionOptions<M, E>,
    start: string | undefined,
    private readonly lock: ProjectionLock | undefined,
  ) {
    this.checkpointer = new Checkpointer(o.offsets, o.name, o.checkpointEvery, o.checkpointAfterMs, start);
    this.done = this.run();
    const self = this;
    this.handle = {
      name: o.name,
      get state() {
        return self.state;
      },
      get error() {
        return self.error;
      },
      done: this.done,
      stop: () => this.stop(),
      metrics: () => this.metrics(),
      health: () => this.health(),
    };
  }

  private async stop(): Promise<void> {
    const wasRunning = this.state === 'running' && !this.stopRequested;
    this.stopRequested = true;
    this.controller?.abort();
    this.sleeping?.wake();
    const end = await this.done;
    if (wasRunning && end.state === 'failed') throw end.error;
  }

  private metrics(): ProjectionMetrics {
    return {
      name: this.o.name,
      source: describeSource(this.o.source),
      state: this.state,
      eventsHandled: this.eventsHandled,
      lastOffset: this.checkpointer.handled,
      savedOffset: this.checkpointer.saved,
      lagMs:
        this.lastEventTimestamp === undefined ? undefined : Math.max(0, Date.now() - this.lastEventTimestamp),
      behindMs: this.behindMs(),
      retries: this.retries,
      checkpoints: this.checkpointer.saves,
    };
  }

  private behindMs(): number {
    return this.inHand === undefined ? this.lastDelayMs : Math.max(0, Date.now() - this.inHand);
  }

  private health(): HealthReport {
    const prefix = `projection.${this.o.name}`;
    const state: HealthCheck =
      this.state === 'running'
        ? { name: `${prefix}.state`, status: 'ok', detail: `running (${describeSource(this.o.source)})` }
        : this.state === 'stopped'
          ? { name: `${prefix}.state`, status: 'degraded', detail: 'stopped: the read model is not updated' }
          : { name: `${prefix}.state`, status: 'failed', detail: this.error?.message ?? 'failed' };
    const behind = this.behindMs();
    const lag: HealthCheck = {
      name: `${prefix}.lag`,
      status: behind > this.o.healthyLagMs ? 'degraded' : 'ok',
      detail: `${(behind / 1000).toFixed(1)} s behind the journal (healthy up to ${this.o.healthyLagMs / 1000} s)`,
      value: behind / 1000,
    };
    return healthReport([state, lag]);
  }

  private async run(): Promise<ProjectionEnd> {
    let failure: ProjectionFailedError | undefined;
    try {
      failure = await this.loop();
    } catch (e) {
      failure = new ProjectionFailedError(this.o.name, 'unexpected error', { attempts: 1, cause: e });
    }
    this.checkpointer.close();
    try {
      await this.checkpointer.save();
    } catch (e) {
      // A failed projection keeps its first cause; the offset stays at the previous save either way.
      failure ??= new ProjectionFailedError(this.o.name, 'its offset could not be saved', {
        attempts: 1,
        cause: e,
      });
    }
    try {
      await this.recordStatus(failure ? 'failed' : 'stopped', failure);
    } catch {
      // The offset is what matters; a status left at "running" without the lock reads as "ended uncleanly".
    }
    try {
      await this.lock?.release();
    } catch (e) {
      failure ??= new ProjectionFailedError(this.o.name, 'its lock could not be released', {
        attempts: 1,
        cause: e,
      });
    } finally {
      releaseName(this.o.offsets, this.o.name);
    }
    if (failure) {
      this.error = failure;
      this.state = 'failed';
      return { state: 'failed', error: failure };
    }
    this.state = 'stopped';
    return { state: 'stopped' };
  }

  /** Reads and handles until stopped (undefined) or until it gives up (the failure). */
  private async loop(): Promise<ProjectionFailedError | undefined> {
    let queryAttempt = 0;
    while (!this.stopRequested) {
      const controller = new AbortController();
      this.controller = controller;
      try {
        for await (const envelope of this.open(this.checkpointer.handled, controller.signal)) {
          queryAttempt = 0;
          this.inHand = envelope.timestamp;
          const failure = await this.handleWithRetries(envelope);
          this.inHand = undefined;
          if (failure === STOPPED) return undefined;
          if (failure) return failure;
          this.eventsHandled++;
          this.lastEventTimestamp = envelope.timestamp;
          this.lastDelayMs = Math.max(0, Date.now() - envelope.timestamp);
          if (this.o.exactlyOnce) this.checkpointer.markSaved(envelope.offset);
          else if (this.checkpointer.markHandled(envelope.offset)) {
            const saveFailure = await this.saveWithRetries();
            if (saveFailure === STOPPED) return undefined;
            if (saveFailure) return saveFailure;
          }
          if (this.stopRequested) return undefined;
        }
        if (!this.o.live || this.stopRequested) return undefined;
        throw new Error('the live query ended by itself');
      } catch (e) {
        if (this.stopRequested) return undefined;
        if (isPersistenceError(e, 'ERR_JOURNAL_CLOSED')) {
          return new ProjectionFailedError(this.o.name, 'its journal was closed', { attempts: 1, cause: e });
        }
        if (e instanceof TypeError) {
          // A malformed or foreign offset, or a bad source: retrying cannot help.
          return new ProjectionFailedError(this.o.name, 'its query was refused', { attempts: 1, cause: e });
        }
        queryAttempt++;
        if (queryAttempt > this.o.maxRetries) {
          return new ProjectionFailedError(this.o.name, 'its query kept failing', {
            attempts: queryAttempt,
            cause: e,
          });
        }
        if ((await this.retryAfter(e, queryAttempt, undefined)) === STOPPED) return undefined;
      } finally {
        this.controller = undefined;
      }
    }
    return undefined;
  }

  private open(after: string | undefined, signal: AbortSignal): AsyncIterable<EventEnvelope<M>> {
    return openSource(this.o.query as EventQuery, this.o.source, after, {
      live: this.o.live,
      signal,
      // Deletion markers only for a projection that handles them (they come typed as DeletionEnvelope).
      deletions: this.o.onDeletion !== undefined,
    }) as AsyncIterable<EventEnvelope<M>>;
  }

  /** Records the projection's state for operators, where the offset store keeps such records. */
  private async recordStatus(state: ProjectionState, failure?: ProjectionFailedError): Promise<void> {
    const offsets = this.o.offsets;
    if (!keepsProjectionRecords(offsets)) return;
    const previous = decodeStatus(await offsets.loadStatus(this.o.name));
    await offsets.saveStatus(
      this.o.name,
      encodeStatus({
        state,
        source: this.o.source,
        updatedAt: Date.now(),
        pid: process.pid,
        ...(this.lastEventTimestamp === undefined
          ? previous?.lastEventTimestamp === undefined
            ? {}
            : { lastEventTimestamp: previous.lastEventTimestamp }
          : { lastEventTimestamp: this.lastEventTimestamp }),
        ...(failure ? { error: failure.message } : {}),
        ...(failure?.event ? { failedEvent: failure.event } : {}),
        ...(previous?.skipped ? { skipped: previous.skipped } : {}),
      }),
    );
  }

  private async handleWithRetries(
    envelope: EventEnvelope<M>,
  ): Promise<ProjectionFailedError | typeof STOPPED | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        const offsets = this.o.offsets;
        const steps = this.steps(envelope);
        if (this.o.exactlyOnce && canTransact(offsets)) {
          offsets.transactSync(this.o.name, envelope.offset, () => {
            let result: unknown;
            for (const step of steps) {
              result = step(NO_CONTEXT);
              // A promise goes back to transactSync at once, which refuses it (nothing written).
              if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') return result;
            }
            return result;
          });
        } else if (this.o.exactlyOnce && canTransactAsync(offsets)) {
          await offsets.transact(this.o.name, envelope.offset, async (transaction) => {
            for (const step of steps) await step({ transaction });
          });
        } else {
          for (const step of steps) await step(NO_CONTEXT);
        }
        return undefined;
      } catch (e) {
        if (attempt > this.o.maxRetries) {
          return new ProjectionFailedError(this.o.name, 'its handler kept failing', {
            event: {
              persistenceId: envelope.persistenceId,
              sequenceNr: envelope.sequenceNr,
              offset: envelope.offset,
            },
            attempts: attempt,
            cause: e,
          });
        }
        if ((await this.retryAfter(e, attempt, envelope)) === STOPPED) return STOPPED;
      }
    }
  }

  private async saveWithRetries(): Promise<ProjectionFailedError | typeof STOPPED | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.checkpointer.save();
        return undefined;
      } catch (e) {
        if (attempt > this.o.maxRetries) {
          return new ProjectionFailedError(this.o.name, 'its offset could not be saved', {
            attempts: attempt,
            cause: e,
          });
        }
        if ((await this.retryAfter(e, attempt, undefined)) === STOPPED) return STOPPED;
      }
    }
  }

  /** What handling one envelope takes: onDeletion for a deletion marker, the handler for each adapted event. */
  private steps(envelope: EventEnvelope<M>): ((context: ProjectionContext) => unknown)[] {
    const item = envelope as EventEnvelope<M> | DeletionEnvelope;
    if (item.deleted) {
      const onDeletion = this.o.onDeletion!;
      return [(context) => onDeletion(item, context)];
    }
    return this.adapt(envelope).map((event) => (context) => this.o.handler(event, context));
  }

  /**
   * The events the handler sees for one stored event: itself, or what the adapter makes of it (an array
   * is zero or more events, each handled with the stored event's envelope; the offset is saved after all).
   */
  private adapt(envelope: EventEnvelope<M>): EventEnvelope<E>[] {
    const fromJournal = this.o.eventAdapter?.fromJournal;
    if (!fromJournal) return [envelope as unknown as EventEnvelope<E>];
    const adapted = fromJournal.call(this.o.eventAdapter, envelope.message, envelope.sequenceNr);
    const events = Array.isArray(adapted) ? (adapted as readonly E[]) : [adapted as E];
    return events.map((message) => ({ ...envelope, message }));
  }

  /** Reports `error`, then waits the backoff for `attempt`; STOPPED when stop() came meanwhile. */
  private async retryAfter(
    error: unknown,
    attempt: number,
    envelope: EventEnvelope<M> | undefined,
  ): Promise<typeof STOPPED | undefined> {
    this.retries++;
    try {
      this.o.onRetry?.(error, attempt, envelope);
    } catch {
      // a throwing onRetry must not change what the projection does
    }
    if (this.stopRequested) return STOPPED;
    const delay = backoffDelay(this.o.backoff, attempt);
    await new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleeping = undefined;
        resolve();
      };
      const timer = setTimeout(wake, delay);
      this.sleeping = { timer, wake };
    });
    return this.stopRequested ? STOPPED : undefined;
  }
}
