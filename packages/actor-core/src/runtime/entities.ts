import { ActorStoppedError, AskTimeoutError } from '../errors';
import type { Reporter } from '../report';
import { describe } from '../validation';
import type { ActorCell } from './actor-cell';
import { DuplicateEntityKindError, StashOverflowError, UnknownEntityKindError } from './actor-errors';
import { DEFAULT_STASH_CAPACITY, EventSourcedBehavior, type OnConflict } from './behavior';
import { Mailbox } from './mailbox';

/**
 * A handle on the entity `entityId` of a kind registered with `ActorSystem.registerEntity`, whether its
 * actor is running, passivated or has never existed: the first message spawns and recovers it, later
 * ones reuse it, and after `passivateAfterMs` of idleness it stops until the next message recovers it.
 * Cheap and synchronous to get (`system.entityRef(kind, id)`); two refs to one entity are interchangeable.
 *
 * @typeParam C - the commands it takes
 * @typeParam R - what `ask` resolves to: the behavior's reply type
 */
export interface EntityRef<C, R = unknown> {
  readonly kind: string;
  readonly entityId: string;
  /**
   * Fire and forget; the actor is started when needed. Throws ActorStoppedError once the system is
   * terminating, StashOverflowError when stashCapacity commands already wait for this entity. A failure
   * later (the behavior factory threw, recovery failed, the handler threw) goes to the system's reporter.
   */
  tell(command: C): void;
  /**
   * Sends a command, starting the actor when needed, and resolves to the reply. Rejects like
   * `ActorRef.ask` (AskTimeoutError, StashOverflowError, ActorStoppedError whose `cause` is the
   * RecoveryFailedError when the entity could not be recovered, the handler's error, a persist failure),
   * with what the behavior factory threw, or with DuplicatePersistenceIdError when the factory's
   * persistenceId belongs to an actor spawned with `spawn` (or to another entity) that is still live.
   * Under `onConflict: 'reload-and-retry'` (the default for entities) a SequenceConflictError reaches the
   * ask only when the command conflicted twice in a row.
   */
  ask<T extends R = R>(command: C, options?: { readonly timeoutMs?: number }): Promise<NoInfer<T>>;
}

/** What the entities of a system ask of it. */
export interface EntityHost {
  /** Starts an actor (recovery runs in the background; commands wait for it). Throws when its id is live. */
  startCell(
    behavior: EventSourcedBehavior<unknown, unknown, unknown, unknown>,
    onConflict: OnConflict,
  ): EntityCell;
  readonly askTimeoutMs: number;
  readonly reporter: Reporter;
  checkTimeout(value: unknown, name: string): asserts value is number;
}

/** The parts of an ActorCell the entities use. */
export type EntityCell = Pick<
  ActorCell<unknown, unknown, unknown, unknown>,
  'persistenceId' | 'takesCommands' | 'tell' | 'ask' | 'stop'
>;

/** What the entities of a system count (see ActorSystemMetrics). */
export interface EntityCounts {
  activations: number;
  passivations: number;
}

export interface EntitySettings {
  readonly passivateAfterMs: number;
  readonly maxActiveEntities: number | undefined;
  readonly onConflict: OnConflict;
}

type Factory = (entityId: string) => EventSourcedBehavior<unknown, unknown, unknown, unknown>;

/** One command for an entity, deliverable to whichever incarnation runs when its turn comes. */
interface Delivery {
  send(cell: EntityCell): void;
  fail(error: unknown): void;
}

/** One entity: its current incarnation, if any, and what waits for the next one. */
interface Slot {
  readonly key: string;
  readonly kind: string;
  readonly entityId: string;
  cell: EntityCell | undefined;
  /** Commands that arrived while the incarnation was stopping: delivered, in order, to the next one. */
  readonly pending: Mailbox<Delivery>;
  /** The stash capacity of the last incarnation's behavior (bounds `pending` too). */
  capacity: number;
  timer: NodeJS.Timeout | undefined;
  /** Set while `deleteEntity` runs: commands wait in `pending` for the incarnation after it. */
  deleting: Promise<void> | undefined;
}

/**
 * The entities of one actor system: kinds and their behavior factories, the live incarnations, idle
 * passivation (one unref'd timer per live entity, refreshed on each message) and the least-recently-used
 * order for maxActiveEntities. All bookkeeping is synchronous, so concurrent first messages find the
 * incarnation the first one started and one entity is never spawned twice.
 */
export class Entities {
  private readonly kinds = new Map<string, Factory>();
  private readonly slots = new Map<string, Slot>();
  private readonly slotOfCell = new WeakMap<EntityCell, Slot>();
  /** Live incarnations not being passivated, least recently used first (Map keeps insertion order). */
  private readonly active = new Map<string, Slot>();
  private closed = false;
  readonly counts: EntityCounts = { activations: 0, passivations: 0 };

  constructor(
    private readonly host: EntityHost,
    private readonly settings: EntitySettings,
  ) {}

  get activeCount(): number {
    return this.active.size;
  }

  register<C, E, S, R>(kind: string, factory: (entityId: string) => EventSourcedBehavior<C, E, S, R>): void {
    checkName(kind, 'kind');
    if (typeof factory !== 'function') {
      throw new TypeError(`registerEntity needs a function (entityId) => behavior, got ${describe(factory)}`);
    }
    if (this.kinds.has(kind)) throw new DuplicateEntityKindError(kind);
    this.kinds.set(kind, factory as unknown as Factory);
  }

  ref<C, R>(kind: string, entityId: string): EntityRef<C, R> {
    checkName(kind, 'kind');
    checkName(entityId, 'entityId');
    if (!this.kinds.has(kind)) throw new UnknownEntityKindError(kind, [...this.kinds.keys()]);
    const key = keyOf(kind, entityId);
    const host: EntityHost = this.host;
    return {
      kind,
      entityId,
      tell: (command) => {
        this.deliver(key, kind, entityId, {
          send: (cell) => cell.tell(command),
          fail: (error) => this.report(kind, entityId, error),
        });
      },
      ask: <T extends R = R>(command: C, options?: { readonly timeoutMs?: number }): Promise<T> => {
        let timeoutMs: number;
        try {
          if (options !== undefined && (typeof options !== 'object' || options === null)) {
            throw new TypeError(`options must be an object, got ${describe(options)}`);
          }
          timeoutMs = options?.timeoutMs ?? host.askTimeoutMs;
          host.checkTimeout(timeoutMs, 'timeoutMs');
        } catch (e) {
          return Promise.reject(e);
        }
        return new Promise<T>((resolve, reject) => {
          const deadline = performance.now() + timeoutMs;
          let waiting: NodeJS.Timeout | undefined;
          const delivery: Delivery = {
            send: (cell) => {
              if (waiting) clearTimeout(waiting);
              // A command that outwaited its ask is still delivered (as a cell does with one queued past
              // its timeout): it may be a deposit the caller retries, but it must not vanish silently.
              const remaining = Math.max(1, Math.ceil(deadline - performance.now()));
              cell.ask<T>(command, remaining).then(resolve, reject);
            },
            fail: (error) => {
              if (waiting) clearTimeout(waiting);
              reject(error);
            },
          };
          let queued: boolean;
          try {
            queued = this.deliver(key, kind, entityId, delivery);
          } catch (e) {
            reject(e);
            return;
          }
          if (queued) {
            waiting = setTimeout(
              () => reject(new AskTimeoutError(`entity "${entityId}" of kind "${kind}"`, timeoutMs)),
              timeoutMs,
            );
          }
        });
      },
    };
  }

  /**
   * Called by the system once an incarnation stopped and released its persistenceId: the entity is
   * passive now, unless commands wait for it, which start the next incarnation at once, in order.
   */
  released(cell: EntityCell, reason: string): void {
    const slot = this.slotOfCell.get(cell);
    if (!slot || slot.cell !== cell) return;
    slot.cell = undefined;
    this.disarm(slot);
    this.active.delete(slot.key);
    // Effect.stop() in an entity is a passivation the entity asked for.
    if (reason === 'requested' || reason === 'passivated') this.counts.passivations++;
    // A deletion in progress resumes the entity itself once its data is gone.
    if (!slot.deleting) this.resume(slot);
  }

  /**
   * Stops the entity's incarnation (commands arriving meanwhile wait), then runs `erase` with its
   * behavior, then lets the waiting commands start the next incarnation. Rejects with what the factory or
   * `erase` threw; the waiting commands are delivered either way.
   */
  delete(
    kind: string,
    entityId: string,
    erase: (behavior: EventSourcedBehavior<unknown, unknown, unknown, unknown>) => Promise<void>,
  ): Promise<void> {
    checkName(kind, 'kind');
    checkName(entityId, 'entityId');
    const factory = this.kinds.get(kind);
    if (!factory) return Promise.reject(new UnknownEntityKindError(kind, [...this.kinds.keys()]));
    if (this.closed) return Promise.reject(terminated({ kind, entityId }));
    const key = keyOf(kind, entityId);
    let slot = this.slots.get(key);
    if (!slot) {
      slot = newSlot(key, kind, entityId);
      this.slots.set(key, slot);
    }
    const target = slot;
    const previous = target.deleting ?? Promise.resolve();
    const deleting = previous
      .catch(() => undefined)
      .then(async () => {
        const behavior = behaviorOf(factory, kind, entityId);
        const cell = target.cell;
        if (cell) {
          this.disarm(target);
          this.active.delete(target.key);
          await cell.stop('passivated');
        }
        await erase(behavior);
      })
      .finally(() => {
        if (target.deleting !== deleting) return;
        target.deleting = undefined;
        if (!target.cell) this.resume(target);
      });
    target.deleting = deleting;
    return deleting;
  }

  /** The entity has no incarnation: commands waiting for one start it, or the slot goes. */
  private resume(slot: Slot): void {
    if (slot.pending.size === 0) {
      this.slots.delete(slot.key);
      return;
    }
    const waiting = slot.pending.drain();
    if (this.closed) {
      this.slots.delete(slot.key);
      for (const d of waiting) d.fail(terminated(slot));
      return;
    }
    let next: EntityCell;
    try {
      next = this.activate(slot);
    } catch (e) {
      this.slots.delete(slot.key);
      for (const d of waiting) d.fail(e);
      return;
    }
    for (const d of waiting) send(d, next);
  }

  /** No more deliveries; timers cleared. The system stops the live incarnations itself. */
  close(): void {
    this.closed = true;
    for (const slot of this.slots.values()) this.disarm(slot);
  }

  /** Hands a command to the entity's incarnation (starting one if none runs); true when it must wait. */
  private deliver(key: string, kind: string, entityId: string, delivery: Delivery): boolean {
    if (this.closed) {
      throw new ActorStoppedError(
        `entity "${entityId}" of kind "${kind}"`,
        'its actor system is terminating',
      );
    }
    let slot = this.slots.get(key);
    const live = slot?.cell;
    if (slot && !slot.deleting && live?.takesCommands && slot.pending.size === 0) {
      this.touch(slot);
      delivery.send(live);
      return false;
    }
    if (slot && (slot.cell || slot.deleting)) {
      // Stopping (passivation, Effect.stop, a failure) or being deleted: the next incarnation takes it.
      if (slot.pending.size >= slot.capacity) {
        throw new StashOverflowError(live?.persistenceId ?? `${kind}/${entityId}`, slot.capacity);
      }
      slot.pending.push(delivery);
      return true;
    }
    slot = newSlot(key, kind, entityId);
    const cell = this.activate(slot);
    this.slots.set(key, slot);
    delivery.send(cell);
    return false;
  }

  /** Starts an incarnation of the slot's entity. Throws what the factory or the spawn threw. */
  private activate(slot: Slot): EntityCell {
    const behavior = behaviorOf(this.kinds.get(slot.kind)!, slot.kind, slot.entityId);
    const cell = this.host.startCell(behavior, this.settings.onConflict);
    slot.cell = cell;
    slot.capacity = behavior.stashCapacity;
    this.slotOfCell.set(cell, slot);
    this.counts.activations++;
    this.active.set(slot.key, slot);
    slot.timer = setTimeout(() => this.idle(slot, cell), this.settings.passivateAfterMs);
    slot.timer.unref();
    this.evictBeyondLimit(slot);
    return cell;
  }

  private touch(slot: Slot): void {
    slot.timer?.refresh();
    // Most recently used goes last.
    this.active.delete(slot.key);
    this.active.set(slot.key, slot);
  }

  private idle(slot: Slot, cell: EntityCell): void {
    slot.timer = undefined;
    if (slot.cell === cell) this.passivate(slot, cell);
  }

  private evictBeyondLimit(keep: Slot): void {
    const limit = this.settings.maxActiveEntities;
    if (limit === undefined) return;
    for (const slot of this.active.values()) {
      if (this.active.size <= limit) return;
      if (slot !== keep && slot.cell) this.passivate(slot, slot.cell);
    }
  }

  /** Stops the incarnation after what it already took; commands arriving meanwhile wait for the next. */
  private passivate(slot: Slot, cell: EntityCell): void {
    this.disarm(slot);
    this.active.delete(slot.key);
    if (!cell.takesCommands) return;
    void cell.stop('passivated');
  }

  private disarm(slot: Slot): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = undefined;
  }

  private report(kind: string, entityId: string, error: unknown): void {
    try {
      this.host.reporter({
        kind: 'tell-failed',
        message: `entity "${entityId}" of kind "${kind}": a told command failed: ${error instanceof Error ? error.message : String(error)}`,
      });
    } catch {
      // A broken reporter must not break delivery to the other waiting commands.
    }
  }
}

function send(delivery: Delivery, cell: EntityCell): void {
  try {
    delivery.send(cell);
  } catch (e) {
    delivery.fail(e);
  }
}

function keyOf(kind: string, entityId: string): string {
  return `${kind.length}:${kind}:${entityId}`;
}

function newSlot(key: string, kind: string, entityId: string): Slot {
  return {
    key,
    kind,
    entityId,
    cell: undefined,
    pending: new Mailbox<Delivery>(),
    // Until an incarnation tells its behavior's stashCapacity.
    capacity: DEFAULT_STASH_CAPACITY,
    timer: undefined,
    deleting: undefined,
  };
}

/** The factory's behavior for the id; a TypeError when it returns something else. */
function behaviorOf(factory: Factory, kind: string, entityId: string) {
  const behavior = factory(entityId);
  if (!(behavior instanceof EventSourcedBehavior)) {
    throw new TypeError(
      `the factory of entity kind "${kind}" must return a behavior made by EventSourcedBehavior.create, ` +
        `got ${describe(behavior)} for "${entityId}"`,
    );
  }
  return behavior;
}

function terminated(slot: { readonly kind: string; readonly entityId: string }): ActorStoppedError {
  return new ActorStoppedError(
    `entity "${slot.entityId}" of kind "${slot.kind}"`,
    'its actor system terminated',
  );
}

function checkName(value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, got ${describe(value)}`);
  if (value.length === 0) throw new TypeError(`${name} must not be empty`);
}
