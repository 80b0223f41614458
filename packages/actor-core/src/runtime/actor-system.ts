import { createPersistence, type PersistenceConfig } from '../config';
import { ActorStoppedError, isPersistenceError } from '../errors';
import { type HealthCheck, type HealthReport, healthReport } from '../health';
import { canLease, type Lease } from '../lease';
import { type ActorSystemMetrics, LatencyRecorder } from '../metrics';
import { defaultReporter, type Reporter } from '../report';
import { canDelete, canReportHealth, type MessageJournal, type SnapshotStore } from '../spi';
import { checkOptionalObject, describe } from '../validation';
import { ActorCell, type CellContext } from './actor-cell';
import { DuplicatePersistenceIdError } from './actor-errors';
import { checkOnConflict, EventSourcedBehavior, type OnConflict } from './behavior';
import { Entities, type EntityCell, type EntityRef } from './entities';

/** Per-spawn settings. */
export interface SpawnOptions {
  /**
   * The actor must never run in two processes at once. On a journal shared by several processes that
   * grants leases (capability `leases`, e.g. postgres), the spawn takes the id's exclusive lease first and
   * every append of the actor is fenced by it; another process's exclusive spawn of the id is refused with
   * LeaseHeldError naming the holder (or waits `leaseWaitMs`). The lease is released when the actor stops.
   * Journals that lock their whole directory (file, LMDB) already keep other processes out: nothing more
   * is taken there. Default false.
   */
  readonly exclusive?: boolean;
  /** With `exclusive`: how long to wait for a lease another process holds, in ms. Default 0: refuse at once. */
  readonly leaseWaitMs?: number;
}

/** Per-ask settings. */
export interface AskOptions {
  /** Reject with AskTimeoutError when no reply came within this. Default: the system's askTimeoutMs. */
  readonly timeoutMs?: number;
}

/**
 * A handle on a live (or stopped) actor. Cheap to keep and pass around.
 *
 * @typeParam C - the commands it takes
 * @typeParam R - what `ask` resolves to: the behavior's reply type (`EventSourcedBehavior.create<C, E, S, R>`)
 */
export interface ActorRef<C, R = unknown> {
  readonly persistenceId: string;
  /** True once the actor stopped (asked to, by Effect.stop, by a failure, or by terminate). */
  readonly isStopped: boolean;
  /**
   * Fire and forget. Throws ActorStoppedError if the actor no longer takes commands, and
   * StashOverflowError when stashCapacity commands are already waiting (the command is not taken).
   */
  tell(command: C): void;
  /**
   * Sends a command and resolves to the reply (`Effect.reply` / `thenReply`). Rejects with
   * AskTimeoutError, StashOverflowError, ActorStoppedError (the actor stopped before handling it; `cause`
   * holds the failure that stopped it, or the command's own effect stopped the actor without a reply),
   * the persist failure or rejection of this command's events, or what the command handler threw.
   *
   * The reply is typed by the ref (`R`, the behavior's reply type). A type argument narrows it to a
   * subtype the caller knows this command gets (`ask<Balance>(...)`), and is never guessed from where
   * the result goes: with no reply type declared, the reply is `unknown`.
   */
  ask<T extends R = R>(command: C, options?: AskOptions): Promise<NoInfer<T>>;
  /** Stops taking commands, lets waiting ones and any persist in flight finish, then stops. */
  stop(): Promise<void>;
}

/** An already opened journal and snapshot store, e.g. the result of `createPersistence`. */
export interface OpenedPersistence {
  readonly journal: MessageJournal<unknown>;
  readonly snapshots: SnapshotStore<unknown>;
  /** Used by terminate() (when the system closes the persistence); else journal and snapshots are closed. */
  close?(): Promise<void>;
}

export interface ActorSystemOptions {
  /**
   * Where actors persist: a configuration (opened with createPersistence and closed by terminate), or an
   * already opened `{ journal, snapshots }` (left open by terminate unless closePersistence is true).
   */
  readonly persistence: PersistenceConfig | OpenedPersistence;
  /** Close the persistence on terminate(). Default: true for a configuration, false for opened stores. */
  readonly closePersistence?: boolean;
  /** Default ask timeout. Default 5000 ms. */
  readonly askTimeoutMs?: number;
  /** Where problems that fail no call (a throwing signal handler or thenRun) are reported. Default: process warnings. */
  readonly reporter?: Reporter;
  /**
   * Entities: an entity whose actor got no message for this long is passivated (stopped, its state
   * dropped; the next message recovers it from its snapshot and events). Default 120 000 ms (2 minutes).
   * Shorter frees memory sooner at the cost of more recoveries.
   */
  readonly passivateAfterMs?: number;
  /**
   * Entities: at most this many entity actors live at once; starting one more passivates the least
   * recently used first. Default: no limit (only idleness passivates). Bounds memory when a request can
   * name any of millions of ids.
   */
  readonly maxActiveEntities?: number;
  /**
   * Entities: what an entity does when a persist is refused with SequenceConflictError (another process or
   * system wrote its id): 'reload-and-retry' (default) recovers it from storage and runs the command once
   * more; 'stop' fails the ask and stops the actor (the next message recovers it). A behavior's own
   * `onConflict` overrides this. Actors started with `spawn` keep 'stop' unless their behavior says otherwise.
   */
  readonly onConflict?: OnConflict;
}

export const DEFAULT_ASK_TIMEOUT_MS = 5000;
/** How long an entity stays live without messages, by default. */
export const DEFAULT_PASSIVATE_AFTER_MS = 120_000;
/** setTimeout's limit. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * Runs event-sourced actors on one journal and snapshot store. Everything (actors, timers, providers)
 * belongs to the system: two systems in one process share nothing.
 */
export class ActorSystem {
  readonly journal: MessageJournal<unknown>;
  readonly snapshots: SnapshotStore<unknown>;
  private readonly closePersistence: (() => Promise<void>) | undefined;
  private readonly askTimeoutMs: number;
  /** The live actors by id, each with its ref (the ref's command type is erased here). */
  private readonly cells = new Map<
    string,
    { readonly cell: LiveCell; readonly ref: ActorRef<never, unknown> }
  >();
  private readonly context: CellContext;
  private terminating: Promise<void> | undefined;
  /** The leases held by exclusive actors, released when they stop. */
  private readonly leases = new Map<{ readonly persistenceId: string }, Lease>();
  private readonly entities: Entities;

  private constructor(
    persistence: OpenedPersistence,
    closePersistence: boolean,
    askTimeoutMs: number,
    reporter: Reporter,
    entitySettings: EntitySettingsOf,
  ) {
    this.journal = persistence.journal;
    this.snapshots = persistence.snapshots;
    this.closePersistence = closePersistence
      ? () =>
          persistence.close
            ? persistence.close()
            : Promise.all([persistence.journal.close(), persistence.snapshots.close()]).then(() => undefined)
      : undefined;
    this.askTimeoutMs = askTimeoutMs;
    this.context = {
      journal: this.journal,
      snapshots: this.snapshots,
      reporter,
      counts: {
        recoveries: 0,
        recoveryFailures: 0,
        recoveriesFromSnapshot: 0,
        eventsReplayed: 0,
        restarts: 0,
        failureStops: 0,
        stashOverflows: 0,
        conflictReloads: 0,
        recoveryLatency: new LatencyRecorder(),
      },
      released: (cell, reason) => {
        if (this.cells.get(cell.persistenceId)?.cell === cell) this.cells.delete(cell.persistenceId);
        this.entities.released(cell as EntityCell, reason);
        const lease = this.leases.get(cell);
        if (lease) {
          this.leases.delete(cell);
          lease.release().catch((error: unknown) =>
            reporter({
              kind: 'lease-release-failed',
              persistenceId: cell.persistenceId,
              ...(isPersistenceError(error) ? { error } : {}),
              message: `releasing the lease of "${cell.persistenceId}" failed (it runs out by itself): ${(error as Error)?.message ?? error}`,
            }),
          );
        }
      },
    };
    this.entities = new Entities(
      {
        startCell: (behavior, onConflict) => this.startEntityCell(behavior, onConflict),
        askTimeoutMs,
        reporter,
        checkTimeout,
      },
      entitySettings,
    );
  }

  /** Opens the persistence (when given a configuration) and returns a running system. */
  static async create(options: ActorSystemOptions): Promise<ActorSystem> {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`ActorSystem.create needs an options object, got ${describe(options)}`);
    }
    checkOptionalObject(options.persistence, 'persistence');
    if (options.persistence === undefined) throw new TypeError('persistence is required');
    const askTimeoutMs = options.askTimeoutMs ?? DEFAULT_ASK_TIMEOUT_MS;
    checkTimeout(askTimeoutMs, 'askTimeoutMs');
    if (options.closePersistence !== undefined && typeof options.closePersistence !== 'boolean') {
      throw new TypeError('closePersistence must be a boolean');
    }
    if (options.reporter !== undefined && typeof options.reporter !== 'function') {
      throw new TypeError('reporter must be a function');
    }
    const reporter = options.reporter ?? defaultReporter;
    const passivateAfterMs = options.passivateAfterMs ?? DEFAULT_PASSIVATE_AFTER_MS;
    checkTimeout(passivateAfterMs, 'passivateAfterMs');
    const { maxActiveEntities } = options;
    if (
      maxActiveEntities !== undefined &&
      (!Number.isSafeInteger(maxActiveEntities) || maxActiveEntities < 1)
    ) {
      throw new RangeError(`maxActiveEntities must be an integer >= 1, got ${describe(maxActiveEntities)}`);
    }
    const onConflict = options.onConflict ?? 'reload-and-retry';
    checkOnConflict(onConflict, 'onConflict');
    const entities: EntitySettingsOf = { passivateAfterMs, maxActiveEntities, onConflict };
    if (isOpened(options.persistence)) {
      return new ActorSystem(
        options.persistence,
        options.closePersistence ?? false,
        askTimeoutMs,
        reporter,
        entities,
      );
    }
    const persistence = await createPersistence(options.persistence);
    return new ActorSystem(persistence, options.closePersistence ?? true, askTimeoutMs, reporter, entities);
  }

  /**
   * Registers an entity kind: `factory(entityId)` builds the behavior of entity `entityId` (typically
   * with persistenceId `${kind}-${entityId}`) whenever its actor must start. Get refs with `entityRef`.
   * Throws DuplicateEntityKindError when the kind is registered already, TypeError for an empty kind or a
   * factory that is not a function; nothing changes then.
   */
  registerEntity<C, E, S, R>(
    kind: string,
    factory: (entityId: string) => EventSourcedBehavior<C, E, S, R>,
  ): void {
    this.entities.register(kind, factory);
  }

  /**
   * The ref of entity `entityId` of `kind`, synchronously: its actor is spawned and recovered on the
   * first message, reused afterwards, passivated after `passivateAfterMs` without messages (or as the
   * least recently used past `maxActiveEntities`), and recovered again by the next message. Concurrent
   * first messages start it once; a message arriving while it passivates waits for the next incarnation
   * and keeps its order. Throws UnknownEntityKindError for a kind not registered, TypeError for an empty
   * or non-string kind or id.
   *
   * The caller names the command and reply types (`entityRef<Cmd, Reply>(kind, id)`): the system cannot
   * check them, like a message sent to an address.
   */
  entityRef<C = unknown, R = unknown>(kind: string, entityId: string): EntityRef<C, R> {
    return this.entities.ref<C, R>(kind, entityId);
  }

  /**
   * Starts an actor and resolves once recovery completed. Rejects with RecoveryFailedError (the actor is
   * then not live), DuplicatePersistenceIdError when its id is live in this system, ActorStoppedError
   * when the system is terminating, LeaseHeldError when `exclusive` and another process holds the id.
   */
  async spawn<C, E, S, R>(
    behavior: EventSourcedBehavior<C, E, S, R>,
    options?: SpawnOptions,
  ): Promise<ActorRef<C, R>> {
    if (!(behavior instanceof EventSourcedBehavior)) {
      throw new TypeError('spawn needs a behavior made by EventSourcedBehavior.create');
    }
    checkOptionalObject(options, 'options');
    if (options?.exclusive !== undefined && typeof options.exclusive !== 'boolean') {
      throw new TypeError(`options.exclusive must be a boolean, got ${describe(options.exclusive)}`);
    }
    const leaseWaitMs = options?.leaseWaitMs ?? 0;
    if (!Number.isSafeInteger(leaseWaitMs) || leaseWaitMs < 0) {
      throw new RangeError(`options.leaseWaitMs must be an integer >= 0, got ${describe(leaseWaitMs)}`);
    }
    if (this.terminating) throw new ActorStoppedError('the actor system', 'it is terminating');
    const id = behavior.persistenceId;
    if (this.cells.has(id)) throw new DuplicatePersistenceIdError(id);
    const cell = new ActorCell(behavior, this.context, { onConflict: behavior.onConflict ?? 'stop' });
    const ref = this.refFor(cell);
    this.cells.set(id, { cell, ref });
    try {
      // The lease first: recovery must read what the previous holder wrote last.
      if (options?.exclusive && canLease(this.journal)) {
        this.leases.set(cell, await this.journal.acquireLease(id, { waitMs: leaseWaitMs }));
      }
      await cell.start();
    } catch (e) {
      // Free the id at once, so a caller that fixed the cause can spawn again right away.
      this.context.released(cell, 'failed');
      throw e;
    }
    return ref;
  }

  /**
   * Deletes entity `entityId` of `kind`: its actor in this system is stopped (messages arriving meanwhile
   * wait), its events become unreadable at once and its snapshots are deleted. On a journal that declares
   * `deletion` (every built-in one) this is `deletePersistenceId`: a deletion marker after the id's highest
   * keeps its numbers from being reused (a new incarnation continues after it), and queries with
   * `deletions: true` deliver it so read models can erase the entity too. On another journal, a snapshot
   * of the behavior's `emptyState` at the id's highest is saved first as a tombstone, then the events are
   * truncated. The next message starts the entity afresh. Resolves once done; the waiting messages then
   * start it.
   *
   * Other processes serving the same entity are not stopped: an incarnation live there keeps its state in
   * memory and may persist it again. Stop serving the entity elsewhere first. How soon the bytes leave the
   * disk depends on the backend (see the actor-core README, "Deleting an entity").
   *
   * Rejects with UnknownEntityKindError, DuplicatePersistenceIdError (an actor started with `spawn` holds
   * the entity's persistenceId), what the factory threw, or the storage error; a deletion that failed
   * part way can be run again.
   */
  deleteEntity(kind: string, entityId: string): Promise<void> {
    try {
      return this.entities.delete(kind, entityId, (behavior) => this.eraseEntity(behavior));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private async eraseEntity(
    behavior: EventSourcedBehavior<unknown, unknown, unknown, unknown>,
  ): Promise<void> {
    const id = behavior.persistenceId;
    if (this.cells.has(id)) throw new DuplicatePersistenceIdError(id);
    if (canDelete(this.journal)) {
      // The marker first: from then on recovery starts after it, whatever snapshot is left, so a crash
      // before the snapshots are gone leaves the entity empty, never half deleted.
      await this.journal.deletePersistenceId(id);
      await this.snapshots.delete(id);
      return;
    }
    const highest = await this.journal.highestSequenceNr(id);
    if (highest === 0) {
      await this.snapshots.delete(id);
      return;
    }
    // The tombstone first (it replaces a snapshot at the highest): from then on recovery starts from it,
    // so a crash between the steps below leaves the entity empty, never failing on a half-deleted past.
    const toSnapshot = behavior.snapshotAdapter?.toSnapshot?.bind(behavior.snapshotAdapter);
    await this.snapshots.save(
      id,
      highest,
      toSnapshot ? toSnapshot(behavior.emptyState) : behavior.emptyState,
    );
    if (highest > 1) await this.snapshots.delete(id, { maxSequenceNr: highest - 1 });
    // Only what the tombstone covers: an event another process appended since stays replayable.
    await this.journal.truncateBefore(id, highest + 1);
  }

  /** Starts an entity's actor without waiting for its recovery (its commands wait in its stash). */
  private startEntityCell(
    behavior: EventSourcedBehavior<unknown, unknown, unknown, unknown>,
    onConflict: OnConflict,
  ): EntityCell {
    if (this.terminating) throw new ActorStoppedError('the actor system', 'it is terminating');
    const id = behavior.persistenceId;
    if (this.cells.has(id)) throw new DuplicatePersistenceIdError(id);
    const cell = new ActorCell(behavior, this.context, { onConflict: behavior.onConflict ?? onConflict });
    this.cells.set(id, { cell, ref: this.refFor(cell) });
    // A failed recovery stops the cell, which rejects its waiting commands with the failure as cause.
    cell.start().catch(() => undefined);
    return cell;
  }

  /** The ref of the live actor with this id (also while it is still recovering), or undefined. */
  lookup<C = unknown, R = unknown>(persistenceId: string): ActorRef<C, R> | undefined {
    // The caller names the command and reply types; the system cannot check them (like a message to an address).
    return this.cells.get(persistenceId)?.ref as ActorRef<C, R> | undefined;
  }

  /** What this system's actors have done since it was created (see ActorSystemMetrics); a snapshot. */
  metrics(): ActorSystemMetrics {
    const { recoveryLatency, ...counts } = this.context.counts;
    return {
      actors: this.cells.size,
      ...counts,
      activeEntities: this.entities.activeCount,
      entityActivations: this.entities.counts.activations,
      entityPassivations: this.entities.counts.passivations,
      recoverySeconds: recoveryLatency.snapshot(),
    };
  }

  /**
   * What an operator pages on, now: `system` (failed once terminating), `actors` (live actors, and those
   * stopped by failures since creation: degraded when any were), then the journal's and the snapshot
   * store's checks (those that declare the `health` capability), named `journal.<check>` and
   * `snapshots.<check>`. The status is the worst check's. Synchronous and cheap.
   */
  health(): HealthReport {
    const { failureStops } = this.context.counts;
    const checks: HealthCheck[] = [
      this.terminating
        ? { name: 'system', status: 'failed', detail: 'terminated' }
        : { name: 'system', status: 'ok', detail: 'running' },
      {
        name: 'actors',
        status: failureStops > 0 ? 'degraded' : 'ok',
        detail: `${this.cells.size} live actors; ${failureStops} stopped by a failure since the system was created`,
        value: this.cells.size,
      },
    ];
    const stores: Array<[string, MessageJournal<unknown> | SnapshotStore<unknown>]> = [
      ['journal', this.journal],
      ['snapshots', this.snapshots],
    ];
    for (const [prefix, store] of stores) {
      if (!canReportHealth(store)) continue;
      for (const c of store.health().checks) checks.push({ ...c, name: `${prefix}.${c.name}` });
    }
    return healthReport(checks);
  }

  /** The persistenceIds of the live actors. */
  get persistenceIds(): string[] {
    return [...this.cells.keys()];
  }

  /**
   * Stops taking spawns and commands, lets every mailbox and persist in flight finish (actors waiting
   * for a supervised restart stop at once, rejecting their waiting commands), flushes the journal, then
   * closes the persistence if the system owns it. Idempotent.
   */
  terminate(): Promise<void> {
    this.terminating ??= (async () => {
      this.entities.close();
      try {
        await Promise.all([...this.cells.values()].map(({ cell }) => cell.stop('terminated')));
        const flush = (this.journal as { flush?: () => Promise<void> }).flush;
        if (typeof flush === 'function') await flush.call(this.journal);
      } finally {
        await this.closePersistence?.();
      }
    })();
    return this.terminating;
  }

  private refFor<C, E, S, R>(cell: ActorCell<C, E, S, R>): ActorRef<C, R> {
    const defaultTimeout = this.askTimeoutMs;
    return {
      persistenceId: cell.persistenceId,
      get isStopped() {
        return cell.isStopped;
      },
      tell: (command) => cell.tell(command),
      ask: <T extends R = R>(command: C, options?: AskOptions): Promise<T> => {
        let timeoutMs: number;
        try {
          checkOptionalObject(options, 'options');
          timeoutMs = options?.timeoutMs ?? defaultTimeout;
          checkTimeout(timeoutMs, 'timeoutMs');
        } catch (e) {
          return Promise.reject(e);
        }
        return cell.ask<T>(command, timeoutMs);
      },
      stop: () => cell.stop('requested'),
    };
  }
}

type EntitySettingsOf = ConstructorParameters<typeof Entities>[1];

/** What the system needs of a cell whatever its types. */
interface LiveCell {
  readonly persistenceId: string;
  stop(reason: 'terminated'): Promise<void>;
}

function isOpened(persistence: PersistenceConfig | OpenedPersistence): persistence is OpenedPersistence {
  const { journal, snapshots } = persistence as { journal?: unknown; snapshots?: unknown };
  return (
    typeof (journal as { appendBatch?: unknown } | undefined)?.appendBatch === 'function' &&
    typeof (snapshots as { loadLatest?: unknown } | undefined)?.loadLatest === 'function'
  );
}

function checkTimeout(value: unknown, name: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_TIMEOUT_MS) {
    throw new RangeError(`${name} must be an integer from 1 to ${MAX_TIMEOUT_MS} ms, got ${describe(value)}`);
  }
}
