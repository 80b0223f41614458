import type { RecoveryFailedError } from '../errors';
import { checkCount, checkPersistenceId, checkSequenceNr, describe } from '../validation';
import type { Effect, Effects } from './effect';

/**
 * Restart with exponential backoff after a persist failure (storage broke or the outcome is unknown).
 * The restart re-runs recovery, so the state is rebuilt from what is durable. Commands waiting in the
 * stash survive a restart and run afterwards; the failing command's ask is rejected with the failure.
 */
export interface SupervisionOptions {
  /** Delay before the first restart. Default 100 ms. */
  readonly minBackoffMs?: number;
  /** Upper bound of the doubling delay. Default 10 000 ms. */
  readonly maxBackoffMs?: number;
  /**
   * Random extra delay as a fraction of the delay (0.2: up to 20 % more), so actors that failed together
   * do not retry in lockstep. Default 0.2; 0 makes delays deterministic.
   */
  readonly jitter?: number;
  /**
   * Restarts allowed in a row (a persist that succeeds after a restart resets the count); past it the
   * actor stops and its waiting asks are rejected. Default 10.
   */
  readonly maxRestarts?: number;
}

/**
 * What an actor does when a persist is refused with SequenceConflictError (someone else appended to its
 * id since it recovered, so its state is stale):
 * - `'reload-and-retry'`: recover again, reading the id's highest sequenceNr and events from storage,
 *   and run the command once more against the reloaded state; its ask fails with the conflict only when
 *   the retry conflicts too (the actor then reloads again and carries on with the next command).
 * - `'stop'`: the conflict is a failure like any other: the ask fails, the actor stops (or restarts under
 *   `supervision`).
 */
export type OnConflict = 'reload-and-retry' | 'stop';

/** Upcasts stored event shapes on replay (schema evolution) and chooses what is written. */
export interface EventAdapter<E> {
  /** What to store for `event`. Default: the event itself. */
  toJournal?(event: E): unknown;
  /**
   * The event to apply for a stored message, of any older shape; or an array of zero or more events, for
   * upcasting a schema change that split (or dropped) an event: each is applied in order. An array is
   * always taken as several events, so a behavior whose events are themselves arrays returns `[event]`.
   * Throwing fails recovery (named).
   */
  fromJournal?(stored: unknown, sequenceNr: number): E | readonly E[];
}

/**
 * How an actor recovers. The defaults rebuild the current state: the newest usable snapshot, then every
 * event after it. The others are for inspecting history or working around bad data; an actor recovered
 * short of the journal's highest sequenceNr sees the state as of then, and a persist of it is refused
 * with SequenceConflictError (its expectation is behind the journal).
 */
export interface RecoveryOptions {
  /**
   * 'latest' (default): start from the newest snapshot that verifies and can be used. 'none': ignore
   * snapshots and replay every event from sequenceNr 1 (recovery fails with RecoveryFailedError when the
   * journal was truncated behind a snapshot).
   */
  readonly snapshot?: 'latest' | 'none';
  /**
   * Recover the state as of this sequenceNr (inclusive): snapshots above it are passed over, events above
   * it are not replayed. Default: the journal's highest.
   */
  readonly toSequenceNr?: number;
  /** Replay at most this many events after the snapshot (0: the snapshot's state only). Default: all. */
  readonly replayMax?: number;
}

/** Upcasts stored snapshot states; throwing makes recovery fall back to an older snapshot. */
export interface SnapshotAdapter<S> {
  /** What to store for `state`. Default: the state itself. */
  toSnapshot?(state: S): unknown;
  /** The state for a stored snapshot; throw when it cannot be used (recovery then tries an older one). */
  fromSnapshot?(stored: unknown, sequenceNr: number): S;
}

/** Typed lifecycle notifications, delivered to the behavior's `signalHandler`. */
export type Signal<E, S> =
  | {
      readonly type: 'recoveryCompleted';
      readonly state: S;
      /** Events replayed after the snapshot (or from the start). */
      readonly replayed: number;
      /** The sequenceNr of the snapshot recovery started from; undefined when it replayed from the start. */
      readonly fromSnapshot: number | undefined;
      /** The actor's last sequenceNr after recovery. */
      readonly sequenceNr: number;
    }
  | { readonly type: 'recoveryFailed'; readonly error: RecoveryFailedError }
  /**
   * A snapshot was passed over during recovery (corrupt, or its state could not be used). sequenceNr 0:
   * the store's damage named no snapshot (it could not list them), so recovery replayed the events alone.
   */
  | { readonly type: 'snapshotSkipped'; readonly sequenceNr: number; readonly error: unknown }
  | { readonly type: 'snapshotCompleted'; readonly sequenceNr: number }
  /** Saving, pruning or the journal truncation after a snapshot failed; the actor carries on. */
  | {
      readonly type: 'snapshotFailed';
      readonly sequenceNr: number;
      readonly phase: 'save' | 'prune' | 'truncate';
      readonly error: unknown;
    }
  /** The journal was truncated before `toSequenceNr` after a durable snapshot. */
  | { readonly type: 'eventsDeleted'; readonly toSequenceNr: number }
  /**
   * A persist did not succeed. `rejected`: nothing was stored and the actor carries on (the command's
   * ask fails); otherwise the actor stops (or restarts under supervision).
   */
  | {
      readonly type: 'persistFailed';
      readonly events: readonly E[];
      readonly rejected: boolean;
      readonly error: unknown;
    }
  /**
   * A persist was refused with SequenceConflictError: another writer (another process, or another system
   * on the same store) appended to this id since the actor recovered. Under `onConflict:
   * 'reload-and-retry'` the actor recovers again from storage and, when `retrying`, runs the command
   * once more against the reloaded state; otherwise that command's ask fails with `error`.
   */
  | { readonly type: 'conflict'; readonly error: unknown; readonly retrying: boolean }
  | {
      readonly type: 'restarting';
      readonly attempt: number;
      readonly delayMs: number;
      readonly error: unknown;
    }
  | {
      readonly type: 'stopped';
      /**
       * requested: ref.stop() or Effect.stop(); failed: a failure ended it; terminated: the system shut
       * down; passivated: an entity idle for passivateAfterMs, or the least recently used one past
       * maxActiveEntities (its next message recovers it again).
       */
      readonly reason: 'requested' | 'failed' | 'terminated' | 'passivated';
      readonly error?: unknown;
    };

/** Everything that defines an event-sourced actor. */
export interface EventSourcedBehaviorOptions<C, E, S, R = unknown> {
  /** The journal and snapshot key; one live actor per id per system. */
  readonly persistenceId: string;
  /** The state before any event. */
  readonly emptyState: S;
  /**
   * Decides what a command does. Must not change `state` itself: state changes only through events.
   * Throwing fails that command's ask and changes nothing; the actor carries on. The third argument is
   * `Effect`'s factories typed for this behavior (for chains such as `.thenRun(fn).thenReply(fn)`).
   */
  readonly commandHandler: (state: S, command: C, effect: Effects<E, S, R>) => Effect<E, S, R>;
  /**
   * Folds an event into the state; called for new events and on replay, so it must be deterministic and
   * free of side effects. Return a new state rather than mutating (snapshots may still be serializing it).
   * Throwing on a durable event stops the actor: the state cannot be brought up to date.
   */
  readonly eventHandler: (state: S, event: E) => S;
  /**
   * Snapshot after every persist that reaches an event whose sequenceNr is a multiple of this, at the
   * last sequenceNr of that persist. Default: no snapshots. Trade-off: snapshots shorten recovery but cost
   * a write of the whole state.
   */
  readonly snapshotEvery?: number;
  /** Snapshot (after the persist) when this returns true for an event; combines with snapshotEvery. */
  readonly shouldSnapshot?: (state: S, event: E, sequenceNr: number) => boolean;
  /**
   * Keep the newest this many snapshots, deleting older ones after each snapshot. Default: keep all.
   * More kept snapshots give recovery more to fall back on when the newest is corrupt.
   */
  readonly keepSnapshots?: number;
  /**
   * After a snapshot is durable (and pruned), truncate the journal before
   * min(snapshot sequenceNr + 1 - retainEventsBehindSnapshot, oldest kept snapshot + 1), so every kept
   * snapshot can still be replayed from. Requires keepSnapshots. Default false: the journal keeps
   * every event (full history, more disk).
   */
  readonly deleteEventsOnSnapshot?: boolean;
  /** Events to keep behind a snapshot when deleting. Default 0. */
  readonly retainEventsBehindSnapshot?: number;
  /**
   * How many commands may wait while the actor recovers, restarts or has a persist in flight. Default
   * 4096. Past it `ask` rejects with StashOverflowError and `tell` throws it: backpressure instead of
   * unbounded memory.
   */
  readonly stashCapacity?: number;
  /** Restart with backoff after a persist failure. Default: no restart, the actor stops. */
  readonly supervision?: SupervisionOptions;
  /** Receives lifecycle signals; a throwing handler is reported, never fatal. */
  readonly signalHandler?: (state: S, signal: Signal<E, S>) => void;
  /** Converts events to and from their stored shape. Default: stored as is. */
  readonly eventAdapter?: EventAdapter<E>;
  /** Converts states to and from their snapshot shape. Default: stored as is. */
  readonly snapshotAdapter?: SnapshotAdapter<S>;
  /**
   * The tags stored with each persisted event, so read models can follow one kind of event across all
   * actors (`EventQuery.eventsByTag`). Called once per event, before anything is written; each event of
   * one persist gets its own tags and the persist stays atomic. A tagger that throws, or returns a bad
   * tag (not a non-empty string, over 256 UTF-8 bytes, more than 64 tags), rejects the persist
   * (WriteRejectedError, nothing stored, the actor carries on). Default: no tags.
   */
  readonly tagger?: (event: E) => readonly string[];
  /**
   * What to do when a persist is refused with SequenceConflictError (see OnConflict). Default: the
   * system's `onConflict` for entities (itself default 'reload-and-retry'), and 'stop' for actors started
   * with `spawn`, whose single writer is usually guaranteed (exclusive lease or a locked directory).
   */
  readonly onConflict?: OnConflict;
  /** How the actor recovers (see RecoveryOptions). Default: newest usable snapshot, then every event after it. */
  readonly recovery?: RecoveryOptions;
}

/** The resolved supervision settings. */
export interface Supervision {
  readonly minBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly jitter: number;
  readonly maxRestarts: number;
}

export const DEFAULT_STASH_CAPACITY = 4096;

const KNOWN_OPTIONS = new Set([
  'persistenceId',
  'emptyState',
  'commandHandler',
  'eventHandler',
  'snapshotEvery',
  'shouldSnapshot',
  'keepSnapshots',
  'deleteEventsOnSnapshot',
  'retainEventsBehindSnapshot',
  'stashCapacity',
  'supervision',
  'signalHandler',
  'eventAdapter',
  'snapshotAdapter',
  'tagger',
  'onConflict',
  'recovery',
]);

/**
 * A validated, immutable actor definition; spawn it with `ActorSystem.spawn`.
 *
 * @typeParam C - commands, E - events, S - state, R - what an ask replies (default unknown)
 */
export class EventSourcedBehavior<C, E, S, R = unknown> {
  readonly persistenceId: string;
  readonly emptyState: S;
  readonly commandHandler: (state: S, command: C, effect: Effects<E, S, R>) => Effect<E, S, R>;
  readonly eventHandler: (state: S, event: E) => S;
  readonly snapshotEvery: number | undefined;
  readonly shouldSnapshot: ((state: S, event: E, sequenceNr: number) => boolean) | undefined;
  readonly keepSnapshots: number | undefined;
  readonly deleteEventsOnSnapshot: boolean;
  readonly retainEventsBehindSnapshot: number;
  readonly stashCapacity: number;
  readonly supervision: Supervision | undefined;
  readonly signalHandler: ((state: S, signal: Signal<E, S>) => void) | undefined;
  readonly eventAdapter: EventAdapter<E> | undefined;
  readonly snapshotAdapter: SnapshotAdapter<S> | undefined;
  readonly tagger: ((event: E) => readonly string[]) | undefined;
  readonly onConflict: OnConflict | undefined;
  readonly recovery: RecoveryOptions | undefined;

  private constructor(options: EventSourcedBehaviorOptions<C, E, S, R>) {
    this.persistenceId = options.persistenceId;
    this.emptyState = options.emptyState;
    this.commandHandler = options.commandHandler;
    this.eventHandler = options.eventHandler;
    this.snapshotEvery = options.snapshotEvery;
    this.shouldSnapshot = options.shouldSnapshot;
    this.keepSnapshots = options.keepSnapshots;
    this.deleteEventsOnSnapshot = options.deleteEventsOnSnapshot ?? false;
    this.retainEventsBehindSnapshot = options.retainEventsBehindSnapshot ?? 0;
    this.stashCapacity = options.stashCapacity ?? DEFAULT_STASH_CAPACITY;
    this.supervision = options.supervision && resolveSupervision(options.supervision);
    this.signalHandler = options.signalHandler;
    this.eventAdapter = options.eventAdapter;
    this.snapshotAdapter = options.snapshotAdapter;
    this.tagger = options.tagger;
    this.onConflict = options.onConflict;
    this.recovery = options.recovery && { ...options.recovery };
  }

  /**
   * Validates the options (TypeError / RangeError naming the bad one) and returns the behavior.
   * Name the types once here (`create<Cmd, Evt, State, Reply>`) and the command handler needs none:
   * `Effect.persist(event).thenReply((state) => ...)` takes them from it, and the ref `spawn` returns is
   * an `ActorRef<Cmd, Reply>` whose `ask` resolves to `Reply`.
   *
   * @typeParam C - commands, E - events, S - state, R - what an ask replies (default unknown)
   */
  static create<C, E, S, R = unknown>(
    options: EventSourcedBehaviorOptions<C, E, S, R>,
  ): EventSourcedBehavior<C, E, S, R> {
    checkBehaviorOptions(options);
    return new EventSourcedBehavior(options);
  }

  /** True when a snapshot is due after `event` at `sequenceNr` (with `state` already including it). */
  snapshotDue(state: S, event: E, sequenceNr: number): boolean {
    if (this.snapshotEvery !== undefined && sequenceNr % this.snapshotEvery === 0) return true;
    return this.shouldSnapshot?.(state, event, sequenceNr) === true;
  }
}

function checkBehaviorOptions<C, E, S, R>(options: EventSourcedBehaviorOptions<C, E, S, R>): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`EventSourcedBehavior.create needs an options object, got ${describe(options)}`);
  }
  const unknown = Object.keys(options).filter((k) => !KNOWN_OPTIONS.has(k));
  if (unknown.length > 0) {
    throw new TypeError(
      `unknown EventSourcedBehavior option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}`,
    );
  }
  checkPersistenceId(options.persistenceId);
  if (!('emptyState' in options)) throw new TypeError('emptyState is required');
  for (const name of ['commandHandler', 'eventHandler'] as const) {
    if (typeof options[name] !== 'function') throw new TypeError(`${name} must be a function`);
  }
  for (const name of ['shouldSnapshot', 'signalHandler', 'tagger'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') {
      throw new TypeError(`${name} must be a function when given`);
    }
  }
  if (options.snapshotEvery !== undefined) checkSequenceNr(options.snapshotEvery, 'snapshotEvery');
  if (options.keepSnapshots !== undefined) checkSequenceNr(options.keepSnapshots, 'keepSnapshots');
  if (options.stashCapacity !== undefined) checkSequenceNr(options.stashCapacity, 'stashCapacity');
  if (options.retainEventsBehindSnapshot !== undefined) {
    checkCount(options.retainEventsBehindSnapshot, 'retainEventsBehindSnapshot');
  }
  if (options.deleteEventsOnSnapshot !== undefined && typeof options.deleteEventsOnSnapshot !== 'boolean') {
    throw new TypeError('deleteEventsOnSnapshot must be a boolean');
  }
  if (options.deleteEventsOnSnapshot && options.keepSnapshots === undefined) {
    throw new TypeError(
      'deleteEventsOnSnapshot needs keepSnapshots: events are only deleted behind the oldest kept snapshot, ' +
        'and with every snapshot kept that is the first one ever taken',
    );
  }
  for (const name of ['eventAdapter', 'snapshotAdapter', 'supervision'] as const) {
    const value = options[name];
    if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) {
      throw new TypeError(`${name} must be an object when given, got ${describe(value)}`);
    }
  }
  if (options.supervision) resolveSupervision(options.supervision);
  if (options.onConflict !== undefined) checkOnConflict(options.onConflict, 'onConflict');
  if (options.recovery !== undefined) checkRecovery(options.recovery);
}

function checkRecovery(recovery: RecoveryOptions): void {
  if (typeof recovery !== 'object' || recovery === null || Array.isArray(recovery)) {
    throw new TypeError(`recovery must be an object when given, got ${describe(recovery)}`);
  }
  const unknown = Object.keys(recovery).filter((k) => !['snapshot', 'toSequenceNr', 'replayMax'].includes(k));
  if (unknown.length > 0)
    throw new TypeError(`unknown recovery option ${unknown.map((k) => `"${k}"`).join(', ')}`);
  if (recovery.snapshot !== undefined && recovery.snapshot !== 'latest' && recovery.snapshot !== 'none') {
    throw new TypeError(`recovery.snapshot must be 'latest' or 'none', got ${describe(recovery.snapshot)}`);
  }
  if (recovery.toSequenceNr !== undefined) checkSequenceNr(recovery.toSequenceNr, 'recovery.toSequenceNr');
  if (recovery.replayMax !== undefined) checkCount(recovery.replayMax, 'recovery.replayMax');
}

/** Throws a TypeError unless `value` is an OnConflict. */
export function checkOnConflict(value: unknown, name: string): asserts value is OnConflict {
  if (value !== 'reload-and-retry' && value !== 'stop') {
    throw new TypeError(`${name} must be 'reload-and-retry' or 'stop', got ${describe(value)}`);
  }
}

function resolveSupervision(options: SupervisionOptions): Supervision {
  const resolved: Supervision = {
    minBackoffMs: options.minBackoffMs ?? 100,
    maxBackoffMs: options.maxBackoffMs ?? 10_000,
    jitter: options.jitter ?? 0.2,
    maxRestarts: options.maxRestarts ?? 10,
  };
  checkCount(resolved.minBackoffMs, 'supervision.minBackoffMs');
  checkCount(resolved.maxBackoffMs, 'supervision.maxBackoffMs');
  checkCount(resolved.maxRestarts, 'supervision.maxRestarts');
  if (resolved.maxBackoffMs < resolved.minBackoffMs) {
    throw new RangeError(
      `supervision.maxBackoffMs (${resolved.maxBackoffMs}) must be >= minBackoffMs (${resolved.minBackoffMs})`,
    );
  }
  if (typeof resolved.jitter !== 'number' || !(resolved.jitter >= 0 && resolved.jitter <= 1)) {
    throw new RangeError(`supervision.jitter must be a number from 0 to 1, got ${String(resolved.jitter)}`);
  }
  return resolved;
}

/** The delay before restart number `attempt` (1-based): min * 2^(attempt-1), capped, plus jitter. */
export function backoffDelay(
  supervision: Supervision,
  attempt: number,
  random: () => number = Math.random,
): number {
  const base = Math.min(supervision.maxBackoffMs, supervision.minBackoffMs * 2 ** Math.min(attempt - 1, 52));
  return Math.round(base * (1 + supervision.jitter * random()));
}
