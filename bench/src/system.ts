import type { DepositEvent } from './payload';

/** Every system the runner knows, in table order. */
export const SYSTEM_IDS = [
  'cairn-memory',
  'cairn-file',
  'cairn-lmdb',
  'raw-fs',
  'raw-lmdb',
  'raw-lmdb-indexed',
  'sqlite-full',
  'sqlite-normal',
  'event-storage',
  'classic-level',
  'cairn-postgres',
  'pg-naive',
  'pg-batched',
] as const;
export type SystemId = (typeof SYSTEM_IDS)[number];

/** Which storage engine a system sits on; a Cairn provider is compared with the raw peer of its engine. */
export type Engine = 'memory' | 'fs' | 'lmdb' | 'sqlite' | 'leveldb' | 'event-storage' | 'postgres';

/**
 * How a store is opened. `durable: false` is only used to build a workload's starting data quickly
 * (never while measuring): every append and save then skips its fsync where the system allows it.
 */
export interface OpenOptions {
  readonly durable: boolean;
}

/** One opened store of one system: the operations the workloads drive. */
export interface BenchStore {
  /** Appends one event; resolves once it is durable (for a durable system). */
  append(id: string, event: DepositEvent): Promise<void>;
  /** Appends the events atomically, durable as `append`. */
  appendBatch(id: string, events: readonly DepositEvent[]): Promise<void>;
  /**
   * Reads and decodes the events of `id` with sequenceNr >= fromSequenceNr in ascending order, calling
   * `onEvent` for each; resolves to how many were read.
   */
  replay(id: string, fromSequenceNr: number, onEvent: (event: DepositEvent) => void): Promise<number>;
  /** Snapshot save/load, where the system has a natural place for them. */
  readonly snapshots?: BenchSnapshots;
  /** The journal's global-order queries (Cairn's EventQuery), where the system has them (W7, W8, W1T). */
  readonly query?: BenchQuery;
  close(): Promise<void>;
}

/** What W7, W8 and W1T need beyond appending: tags and the global order. */
export interface BenchQuery {
  /** Appends one event with these tags; resolves once it is durable, like `append`. */
  appendTagged(id: string, event: DepositEvent, tags: readonly string[]): Promise<void>;
  /** Reads every event from the first in the global order (not live); resolves to how many were read. */
  catchUp(onEvent: (event: DepositEvent) => void): Promise<number>;
  /**
   * Starts a live reader of every event committed from now on, calling `onEvent` as each is delivered;
   * `stop()` ends it and resolves once it let go.
   */
  follow(onEvent: (event: DepositEvent, persistenceId: string, sequenceNr: number) => void): Promise<{
    stop(): Promise<void>;
  }>;
}

export interface BenchSnapshots {
  /** Saves the state of `id` as of `sequenceNr`; durable before it resolves (for a durable store). */
  save(id: string, sequenceNr: number, state: unknown): Promise<void>;
  /** The newest snapshot of `id`, or undefined. */
  load(id: string): Promise<{ sequenceNr: number; state: unknown } | undefined>;
}

/** A system under test. */
export interface BenchSystem {
  readonly id: SystemId;
  /** The name printed in the table. */
  readonly label: string;
  readonly engine: Engine;
  /** Whether an append is on stable storage when its promise resolves. */
  readonly durable: boolean;
  /** How durability is obtained (or why it is not), printed in BENCHMARKS.md and the results file. */
  readonly durability: string;
  /** Opens (creating when missing) the store kept in `dir`. The same dir reopens the same data. */
  open(dir: string, options: OpenOptions): Promise<BenchStore>;
  /**
   * A peer that keeps a global order across ids (and tags) as Cairn's read side does, so the read-side
   * workloads (W1T, W8) run on it too. Cairn systems say so through `BenchStore.query`.
   */
  readonly globalOrder?: boolean;
  /** For Cairn systems: the actor runtime on this system's provider (W4, W6). */
  readonly runtime?: (dir: string) => Promise<RuntimeTarget>;
}

/** An actor system started on a system's provider, for the workloads that go through the runtime. */
export interface RuntimeTarget {
  readonly system: ActorSystemLike;
  readonly module: RuntimeModule;
}

/**
 * The runtime API as the public contract fixes it ("Event-sourced actors"), typed here structurally so the harness
 * compiles and runs whether or not the runtime has landed in @cairn/actor-core yet.
 */
export interface RuntimeModule {
  readonly ActorSystem: { create(options: { persistence: unknown }): Promise<ActorSystemLike> };
  readonly EventSourcedBehavior: { create(definition: BehaviorDefinition): unknown };
  readonly Effect: EffectFactory;
}

export interface BehaviorDefinition {
  readonly persistenceId: string;
  readonly emptyState: unknown;
  readonly commandHandler: (state: never, command: never) => unknown;
  readonly eventHandler: (state: never, event: never) => unknown;
  readonly snapshotEvery?: number;
}

export interface EffectLike {
  thenReply(reply: (state: never) => unknown): EffectLike;
}

export interface EffectFactory {
  persist(events: unknown): EffectLike;
  reply(value: unknown): EffectLike;
}

export interface ActorSystemLike {
  spawn(behavior: unknown): Promise<ActorRefLike>;
  terminate(): Promise<void>;
}

export interface ActorRefLike {
  ask(command: unknown): Promise<unknown>;
}

/** A system that cannot run here (its package is missing or lacks an export); the table says why. */
export class SystemUnavailableError extends Error {
  override readonly name = 'SystemUnavailableError';
}

/** A workload that does not apply to a system (event-storage has no snapshot store, say). */
export class NotApplicableError extends Error {
  override readonly name = 'NotApplicableError';
}
