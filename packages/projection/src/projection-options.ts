import { checkCount, checkSequenceNr, type EventAdapter } from '@cairn/actor-core';
import {
  canTransact,
  canTransactAsync,
  type DeletionEnvelope,
  type EventEnvelope,
  type EventQuery,
  type OffsetStore,
} from './read-side';

/** Which events a projection reads: every event, those carrying one tag, or one persistence id's. */
export type ProjectionSource =
  | { readonly all: true }
  | { readonly tag: string }
  | { readonly persistenceId: string };

/**
 * Handles one event. Resolving means "done with this event": only then may its offset be saved. Throwing
 * (or rejecting) makes the projection retry the same event after a backoff; nothing later is offered
 * meanwhile. Because an event may be offered again after a crash or a retry (at-least-once), a handler
 * must be idempotent: key its writes by `event.offset` or by `persistenceId` + `sequenceNr`.
 *
 * `context.transaction` is set only with `exactlyOnce` on a store whose transactions are a database
 * server's (`canTransactAsync(offsets)`: the postgres provider's): the transaction's client, in which the
 * handler writes its read model and the offset is saved (@cairn/postgres: a PostgresTransaction,
 * `tx.query(sql, params)`).
 */
export type ProjectionHandler<E> = (
  event: EventEnvelope<E>,
  context: ProjectionContext,
) => void | Promise<void>;

/**
 * Handles the deletion of an id (`system.deleteEntity`, `journal.deletePersistenceId`): erase what the
 * read model holds of `marker.persistenceId`. Offered in the global order, retried and checkpointed like
 * an event (so it must be idempotent too); `context` as for the handler.
 */
export type DeletionHandler = (marker: DeletionEnvelope, context: ProjectionContext) => void | Promise<void>;

/** What a handler gets besides the event. */
export interface ProjectionContext {
  /** The transaction of an exactly-once projection on a database server's store (see ProjectionHandler). */
  readonly transaction?: unknown;
}

/** Delays between retries of a failing event (or query): min * 2^(attempt-1), capped, plus jitter. */
export interface ProjectionBackoff {
  /** Delay before the first retry. Default 100 ms. */
  readonly minBackoffMs?: number;
  /** Upper bound of the doubling delay. Default 10 000 ms. */
  readonly maxBackoffMs?: number;
  /** Random extra delay as a fraction of the delay (0 to 1). Default 0.2. */
  readonly jitter?: number;
}

export interface ProjectionOptions<M = unknown, E = M> {
  /** The projection's name: the key of its saved offset, and what "one instance at a time" is about. */
  readonly name: string;
  /**
   * The journal's queries (every built-in journal implements them). A journal from `createPersistence`
   * is typed `unknown`: pass it as it is, and the projection's type parameter says what its events are.
   */
  readonly query: EventQuery<M> | EventQuery<unknown>;
  /** `{ all: true }`, `{ tag }` or `{ persistenceId }`. */
  readonly source: ProjectionSource;
  /** Where the offset is kept (`createPersistence(...).offsets`, or one of your own). */
  readonly offsets: OffsetStore;
  readonly handler: ProjectionHandler<E>;
  /**
   * Given, the projection also reads deletion markers (queries with `deletions: true`) and hands each to
   * this instead of the handler; a tag projection gets the markers of ids whose deleted events carried its
   * tag. Default: none, and deletions pass the projection by (the read model keeps the deleted id's rows).
   */
  readonly onDeletion?: DeletionHandler;
  /**
   * Upcasts stored events to their current shape before the handler sees them (the same adapter the
   * behaviors use: its `fromJournal(stored, sequenceNr)`). Throwing counts as a handler failure.
   * Default: the stored message as is.
   */
  readonly eventAdapter?: EventAdapter<E>;
  /**
   * Save the offset after this many handled events. Default 100. Lower: less to redo after a crash,
   * more writes.
   */
  readonly checkpointEvery?: number;
  /**
   * Save a handled-but-unsaved offset at the latest this long after the first such event was handled,
   * also while the projection waits for new events. Default 1000 ms.
   */
  readonly checkpointAfterMs?: number;
  /**
   * Retries of one failing event (or of a failing query or offset save) before the projection stops
   * and reports itself failed. Default 10. `0`: fail at the first error. An event is never skipped.
   */
  readonly maxRetries?: number;
  /** Delays between retries. */
  readonly backoff?: ProjectionBackoff;
  /**
   * Default true: after catching up, wait for new events. False: end (state "stopped") once the events
   * committed when the projection started are handled, saving the offset: a rebuild or a batch run.
   */
  readonly live?: boolean;
  /**
   * Default false (at-least-once). True: exactly-once effects where the offset store can save an offset in
   * the read model's own transaction. With `canTransact(offsets)` (the lmdb provider's) each event's
   * handler runs inside `offsets.transactSync(name, event.offset, ...)`: it must be synchronous and write
   * its read model through that store's databases (`offsets.readModel(name)` on LMDB). With
   * `canTransactAsync(offsets)` (the postgres provider's) it runs inside `offsets.transact(name,
   * event.offset, tx => ...)` and gets the transaction as `context.transaction`: it writes its read model
   * with `tx.query(...)`. Either way its writes and the offset commit together, per event (one transaction
   * each: slower than checkpointing every `checkpointEvery` events, which this mode does not use). A store
   * with neither: TypeError at start.
   */
  readonly exactlyOnce?: boolean;
  /**
   * `handle.health()` reports the projection degraded once it is more than this many milliseconds behind
   * the journal (see ProjectionMetrics.behindMs). Default 60 000.
   */
  readonly healthyLagMs?: number;
  /** Told of every error that will be retried (the projection goes on); for logs. */
  readonly onRetry?: (error: unknown, attempt: number, event: EventEnvelope<M> | undefined) => void;
}

/** The options with every default applied. */
export interface ResolvedProjectionOptions<M, E> {
  readonly name: string;
  readonly query: EventQuery<M>;
  readonly source: ProjectionSource;
  readonly offsets: OffsetStore;
  readonly handler: ProjectionHandler<E>;
  readonly onDeletion: DeletionHandler | undefined;
  readonly eventAdapter: EventAdapter<E> | undefined;
  readonly checkpointEvery: number;
  readonly checkpointAfterMs: number;
  readonly maxRetries: number;
  readonly backoff: { minBackoffMs: number; maxBackoffMs: number; jitter: number; maxRestarts: number };
  readonly live: boolean;
  readonly exactlyOnce: boolean;
  readonly healthyLagMs: number;
  readonly onRetry: ProjectionOptions<M, E>['onRetry'];
}

const KNOWN = new Set([
  'name',
  'query',
  'source',
  'offsets',
  'handler',
  'onDeletion',
  'eventAdapter',
  'checkpointEvery',
  'checkpointAfterMs',
  'maxRetries',
  'backoff',
  'live',
  'exactlyOnce',
  'onRetry',
  'healthyLagMs',
]);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function hasMethods(value: unknown, names: readonly string[]): boolean {
  return isObject(value) && names.every((n) => typeof value[n] === 'function');
}

/** Checks every option (TypeError / RangeError naming the bad one) and applies the defaults. */
export function resolveProjectionOptions<M, E>(
  options: ProjectionOptions<M, E>,
): ResolvedProjectionOptions<M, E> {
  if (!isObject(options)) throw new TypeError('runProjection needs an options object');
  const unknown = Object.keys(options).filter((k) => !KNOWN.has(k));
  if (unknown.length > 0) {
    throw new TypeError(`unknown runProjection option(s): ${unknown.map((k) => `"${k}"`).join(', ')}`);
  }
  if (typeof options.name !== 'string' || options.name.length === 0) {
    throw new TypeError('name must be a non-empty string');
  }
  if (Buffer.byteLength(options.name, 'utf8') > 256) {
    throw new RangeError('name must be at most 256 bytes of UTF-8');
  }
  if (!hasMethods(options.query, ['allEvents', 'eventsByTag', 'eventsByPersistenceId'])) {
    throw new TypeError(
      'query must offer allEvents, eventsByTag and eventsByPersistenceId (a journal that implements EventQuery)',
    );
  }
  if (!hasMethods(options.offsets, ['load', 'save'])) {
    throw new TypeError(
      'offsets must be an OffsetStore (load, save): createPersistence(...).offsets or one of your own',
    );
  }
  if (typeof options.handler !== 'function') throw new TypeError('handler must be a function');
  if (options.onDeletion !== undefined && typeof options.onDeletion !== 'function') {
    throw new TypeError('onDeletion must be a function when given');
  }
  checkSource(options.source);
  if (options.eventAdapter !== undefined && !isObject(options.eventAdapter)) {
    throw new TypeError('eventAdapter must be an object (with fromJournal) when given');
  }
  if (options.onRetry !== undefined && typeof options.onRetry !== 'function') {
    throw new TypeError('onRetry must be a function when given');
  }
  if (options.live !== undefined && typeof options.live !== 'boolean') {
    throw new TypeError('live must be a boolean when given');
  }
  if (options.exactlyOnce !== undefined && typeof options.exactlyOnce !== 'boolean') {
    throw new TypeError('exactlyOnce must be a boolean when given');
  }
  if (options.exactlyOnce && !canTransact(options.offsets) && !canTransactAsync(options.offsets)) {
    throw new TypeError(
      "exactlyOnce needs an offset store that saves the offset in the read model's transaction " +
        "(capabilities.exactlyOnce or capabilities.transactions: the lmdb and postgres providers'); this one offers at-least-once only",
    );
  }
  const checkpointEvery = options.checkpointEvery ?? 100;
  checkSequenceNr(checkpointEvery, 'checkpointEvery');
  const checkpointAfterMs = options.checkpointAfterMs ?? 1000;
  checkCount(checkpointAfterMs, 'checkpointAfterMs');
  const healthyLagMs = options.healthyLagMs ?? 60_000;
  checkCount(healthyLagMs, 'healthyLagMs');
  const maxRetries = options.maxRetries ?? 10;
  checkCount(maxRetries, 'maxRetries');
  if (options.backoff !== undefined && !isObject(options.backoff)) {
    throw new TypeError('backoff must be an object when given');
  }
  const minBackoffMs: unknown = options.backoff?.minBackoffMs ?? 100;
  const maxBackoffMs: unknown = options.backoff?.maxBackoffMs ?? 10_000;
  checkCount(minBackoffMs, 'backoff.minBackoffMs');
  checkCount(maxBackoffMs, 'backoff.maxBackoffMs');
  const jitter: unknown = options.backoff?.jitter ?? 0.2;
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
    throw new RangeError(`backoff.jitter must be a number from 0 to 1, got ${String(jitter)}`);
  }
  const backoff = { minBackoffMs, maxBackoffMs, jitter, maxRestarts: maxRetries };
  if (backoff.maxBackoffMs < backoff.minBackoffMs) {
    throw new RangeError(
      `backoff.maxBackoffMs (${backoff.maxBackoffMs}) must be >= minBackoffMs (${backoff.minBackoffMs})`,
    );
  }
  return {
    name: options.name,
    // The caller's type parameter says what the journal's events are (see ProjectionOptions.query).
    query: options.query as EventQuery<M>,
    source: options.source,
    offsets: options.offsets,
    handler: options.handler,
    onDeletion: options.onDeletion,
    eventAdapter: options.eventAdapter,
    checkpointEvery,
    checkpointAfterMs,
    maxRetries,
    backoff,
    live: options.live ?? true,
    exactlyOnce: options.exactlyOnce ?? false,
    healthyLagMs,
    onRetry: options.onRetry,
  };
}

function checkSource(source: unknown): asserts source is ProjectionSource {
  const shapes = 'source must be { all: true }, { tag: string } or { persistenceId: string }';
  if (!isObject(source)) throw new TypeError(shapes);
  const keys = Object.keys(source);
  if (keys.length !== 1) throw new TypeError(`${shapes}, got keys ${keys.join(', ') || '(none)'}`);
  if ('all' in source) {
    if (source.all !== true) throw new TypeError(shapes);
    return;
  }
  const value = source.tag ?? source.persistenceId;
  if (typeof value !== 'string' || value.length === 0) throw new TypeError(shapes);
}

/** "all events", "tag T", "persistenceId P": for messages and listings. */
export function describeSource(source: ProjectionSource): string {
  if ('all' in source) return 'all events';
  if ('tag' in source) return `tag "${source.tag}"`;
  return `persistenceId "${source.persistenceId}"`;
}
