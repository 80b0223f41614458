import { AssertionError } from 'node:assert';
import { isDeepStrictEqual } from 'node:util';
import {
  type ActorRef,
  ActorSystem,
  Effect,
  EventSourcedBehavior,
  type EventSourcedBehaviorOptions,
  MemoryMessageJournal,
  MemorySnapshotStore,
  resolveSerializer,
  type Serializer,
  type Signal,
} from '@cairn/actor-core';

/** Options of `behaviorTestKit`. */
export interface BehaviorTestKitOptions {
  /**
   * The serializer the journal and snapshot store use, and the round-trip checks run through: the one
   * your application configures. A Serializer, or "msgpack" (default) or "json".
   */
  readonly serializer?: Serializer | string | number;
  /**
   * Default true: after every command, each persisted event (as stored, after `eventAdapter.toJournal`),
   * the new state and its snapshot (after `snapshotAdapter.toSnapshot`, and back through
   * `fromSnapshot`) are encoded and decoded with the serializer and must come back deep-equal
   * (prototypes included). A Date that returns as a string, a Map that returns as an object, an instance
   * of an unregistered class: `runCommand` rejects with an AssertionError naming the value and what
   * changed, instead of the application finding out on its first recovery.
   */
  readonly serializationCheck?: boolean;
  /** Ask timeout per command, ms. Default 5000. */
  readonly timeoutMs?: number;
}

/** What one command did. */
export interface CommandResult<C, E, S, R> {
  readonly command: C;
  /** The events the command persisted, in order, as the command handler gave them (empty for none). */
  readonly events: readonly E[];
  /** The state after the command (and its events). */
  readonly state: S;
  /** The reply (`Effect.reply`, `thenReply`); undefined when the effect replied nothing. */
  readonly reply: R | undefined;
  /** False when the effect replied nothing (an ask on a live system would time out). */
  readonly hasReply: boolean;
  /** The effect stopped the actor (Effect.stop / thenStop): run `restart()` to continue. */
  readonly stopped: boolean;
}

/** A behavior under test: see `behaviorTestKit`. */
export interface BehaviorTestKit<C, E, S, R> {
  /**
   * Runs one command to completion: resolves with the events it persisted, the new state and the reply.
   * Rejects with what the command handler threw, with the persist failure (WriteRejectedError for an
   * event the serializer refuses), or with an AssertionError from the serialization check.
   */
  runCommand(command: C): Promise<CommandResult<C, E, S, R>>;
  /** The actor's current state. */
  readonly state: S;
  /** Every event persisted so far, in order, as the command handlers gave them. */
  readonly events: readonly E[];
  /**
   * Stops the actor and starts it again from what was persisted (snapshot + replay, through the
   * adapters): resolves with the recovered state, which a correct behavior has equal to the state before.
   */
  restart(): Promise<S>;
  /** The memory journal the kit persists to (for reading back stored events, or injecting data). */
  readonly journal: MemoryMessageJournal;
  /** The memory snapshot store. */
  readonly snapshots: MemorySnapshotStore;
  /** Stops the actor and closes the stores. */
  close(): Promise<void>;
}

/** Marks "the effect replied nothing", so a command without a reply still completes an ask. */
const NO_REPLY = Symbol('no reply');

/**
 * Runs commands against one behavior on the memory provider, one at a time, and returns per command the
 * persisted events, the new state and the reply; checks by default that events, state and snapshot
 * survive the configured serializer (see BehaviorTestKitOptions.serializationCheck); `restart()` recovers
 * from what was persisted. Uses no test runner's API: it works the same under jest, vitest and node:test
 * (failures are rejections and node:assert AssertionErrors, which every runner reports).
 *
 * ```ts
 * const kit = await behaviorTestKit(account('42'));
 * const result = await kit.runCommand({ type: 'deposit', amount: 10 });
 * // result.events: [{ type: 'deposited', amount: 10 }], result.state: 10, result.reply: 10
 * expect(await kit.restart()).toEqual(10);
 * await kit.close();
 * ```
 */
export async function behaviorTestKit<C, E, S, R>(
  behavior: EventSourcedBehavior<C, E, S, R>,
  options: BehaviorTestKitOptions = {},
): Promise<BehaviorTestKit<C, E, S, R>> {
  if (!(behavior instanceof EventSourcedBehavior)) {
    throw new TypeError('behaviorTestKit needs a behavior made by EventSourcedBehavior.create');
  }
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const serializer = resolveSerializer(options.serializer);
  const check = options.serializationCheck ?? true;
  const timeoutMs = options.timeoutMs ?? 5000;
  const journal = await MemoryMessageJournal.open({ serializer });
  const snapshots = await MemorySnapshotStore.open({ serializer });

  let state: S = behavior.emptyState;
  let effectOfCommand: Effect<E, S, R> | undefined;
  const events: E[] = [];
  const wrapped = EventSourcedBehavior.create<C, E, S, R | typeof NO_REPLY>({
    ...optionsOf(behavior),
    commandHandler: (current, command, effects) => {
      state = current;
      const effect = behavior.commandHandler(current, command, effects as never);
      effectOfCommand = effect;
      if (!(effect instanceof Effect)) return effect;
      const replies = effect.sideEffects.some((s) => s.kind === 'reply');
      return (replies ? effect : effect.thenReply(() => NO_REPLY)) as Effect<E, S, R | typeof NO_REPLY>;
    },
    eventHandler: (current, event) => {
      state = behavior.eventHandler(current, event);
      return state;
    },
    signalHandler: (current, signal: Signal<E, S>) => {
      if (signal.type === 'recoveryCompleted') state = signal.state;
      behavior.signalHandler?.(current, signal);
    },
  });

  const system = async () => {
    const created = await ActorSystem.create({
      persistence: { journal, snapshots },
      askTimeoutMs: timeoutMs,
    });
    return { system: created, ref: await created.spawn(wrapped) };
  };
  let live: { system: ActorSystem; ref: ActorRef<C, R | typeof NO_REPLY> } = await system();

  return {
    journal,
    snapshots,
    get state() {
      return state;
    },
    get events() {
      return [...events];
    },
    async runCommand(command) {
      effectOfCommand = undefined;
      const before = await journal.highestSequenceNr(behavior.persistenceId);
      const reply = await live.ref.ask(command);
      const effect = effectOfCommand as Effect<E, S, R> | undefined;
      const persisted = effect ? [...effect.events] : [];
      const highest = await journal.highestSequenceNr(behavior.persistenceId);
      if (highest !== before + persisted.length) {
        throw new AssertionError({
          message: `the command persisted ${highest - before} events, its effect named ${persisted.length}`,
        });
      }
      events.push(...persisted);
      if (check) checkRoundTrips(behavior, serializer, command, persisted, state, highest);
      return {
        command,
        events: persisted,
        state,
        reply: reply === NO_REPLY ? undefined : (reply as R),
        hasReply: reply !== NO_REPLY,
        stopped: effect?.stops === true,
      };
    },
    async restart() {
      await live.system.terminate();
      state = behavior.emptyState;
      live = await system();
      return state;
    },
    async close() {
      try {
        await live.system.terminate();
      } finally {
        await journal.close();
        await snapshots.close();
      }
    },
  };
}

/** The behavior's options, to build the recording copy from. */
function optionsOf<C, E, S, R>(
  b: EventSourcedBehavior<C, E, S, R>,
): Omit<EventSourcedBehaviorOptions<C, E, S, R>, 'commandHandler'> {
  const all = {
    persistenceId: b.persistenceId,
    emptyState: b.emptyState,
    eventHandler: b.eventHandler,
    snapshotEvery: b.snapshotEvery,
    shouldSnapshot: b.shouldSnapshot,
    keepSnapshots: b.keepSnapshots,
    deleteEventsOnSnapshot: b.deleteEventsOnSnapshot,
    retainEventsBehindSnapshot: b.retainEventsBehindSnapshot,
    stashCapacity: b.stashCapacity,
    supervision: b.supervision,
    signalHandler: b.signalHandler,
    eventAdapter: b.eventAdapter,
    snapshotAdapter: b.snapshotAdapter,
    tagger: b.tagger,
    onConflict: b.onConflict,
  };
  return Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined)) as typeof all;
}

function checkRoundTrips<C, E, S, R>(
  behavior: EventSourcedBehavior<C, E, S, R>,
  serializer: Serializer,
  command: C,
  events: readonly E[],
  state: S,
  sequenceNr: number,
): void {
  const after = `after command ${preview(command)}`;
  const toJournal = behavior.eventAdapter?.toJournal?.bind(behavior.eventAdapter);
  events.forEach((event, i) => {
    roundTrip(serializer, toJournal ? toJournal(event) : event, `event ${i} (${preview(event)}) ${after}`);
  });
  roundTrip(serializer, state, `the state ${after}`);
  const adapter = behavior.snapshotAdapter;
  if (adapter?.toSnapshot || adapter?.fromSnapshot) {
    const stored = adapter.toSnapshot ? adapter.toSnapshot(state) : state;
    const decoded = roundTrip(serializer, stored, `the snapshot of the state ${after}`);
    const restored = adapter.fromSnapshot ? adapter.fromSnapshot(decoded, sequenceNr) : decoded;
    if (!isDeepStrictEqual(restored, state)) {
      throw new AssertionError({
        message: `the snapshot of the state ${after} does not restore the state through snapshotAdapter.fromSnapshot`,
        actual: restored,
        expected: state,
        operator: 'deepStrictEqual',
      });
    }
  }
}

/** Encodes and decodes `value`; throws an AssertionError when it does not come back deep-equal. */
function roundTrip(serializer: Serializer, value: unknown, what: string): unknown {
  let decoded: unknown;
  try {
    decoded = serializer.decode(serializer.encode(value));
  } catch (e) {
    throw new AssertionError({
      message: `${what} cannot be stored with the ${serializer.name} serializer: ${e instanceof Error ? e.message : String(e)}`,
    });
  }
  if (!isDeepStrictEqual(decoded, value)) {
    throw new AssertionError({
      message:
        `${what} does not survive the ${serializer.name} serializer: it comes back different ` +
        '(a Date as a string, a Map or class instance as a plain object, undefined dropped, ...)',
      actual: decoded,
      expected: value,
      operator: 'deepStrictEqual',
    });
  }
  return decoded;
}

function preview(value: unknown): string {
  try {
    const text = JSON.stringify(value);
    if (text !== undefined) return text.length > 80 ? `${text.slice(0, 77)}...` : text;
  } catch {
    // Not JSON-able (a cycle, a BigInt): fall back to its type.
  }
  return typeof value;
}
