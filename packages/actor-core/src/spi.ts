/**
 * The service provider interface every Cairn journal and snapshot store implements, and every
 * application and conformance suite codes against. The guarantees stated here are the contract:
 * a provider that cannot keep one must not claim to implement the interface.
 */

/** One event as stored in a journal. */
export interface JournalEntry<M = unknown> {
  readonly persistenceId: string;
  /** 1, 2, 3, ... per persistenceId, assigned by the journal, never reused (not even after truncation). */
  readonly sequenceNr: number;
  /** Milliseconds since the epoch, taken when the entry was appended. */
  readonly timestamp: number;
  readonly message: M;
}

export interface AppendOptions {
  /**
   * Optimistic concurrency: reject with `SequenceConflictError` unless `highestSequenceNr(persistenceId)`
   * equals this, counting every append issued before this one. `0` means "this id has no entries yet".
   * The comparison is against the highest number ever assigned, truncation notwithstanding.
   * A conflicting append writes nothing.
   */
  readonly expectedSequenceNr?: number;
}

export interface ReadOptions {
  /** Inclusive upper bound. Default: no bound. */
  readonly toSequenceNr?: number;
  /** At most this many entries; `0` returns nothing. Default: no limit. */
  readonly max?: number;
}

/**
 * An append-only, per-persistenceId log of events.
 *
 * Guarantees:
 * - A write is all-or-nothing: an `appendBatch` becomes visible whole or not at all, also across a crash.
 * - A write resolves only once it is readable and durable (per the journal's sync setting; every
 *   backend's default is durable). When the outcome is uncertain the promise rejects.
 * - Calls on one persistenceId take effect in call order: an append issued after another gets the higher
 *   sequenceNr and resolves after it; a read or `highestSequenceNr` sees every append issued before it.
 * - The highest sequence number of an id never decreases.
 * - Bad arguments (empty or non-string persistenceId, sequenceNr < 1 or not an integer, empty batch,
 *   negative max) reject with `TypeError` or `RangeError` and change nothing.
 * - After `close()` every call rejects with `JournalClosedError`.
 */
export interface MessageJournal<M = unknown> {
  /** Durable (per the journal's sync setting) before it resolves; resolves to the assigned sequenceNr. */
  append(persistenceId: string, message: M, options?: AppendOptions): Promise<number>;
  /** Atomic: all messages or none become visible; consecutive sequenceNrs. */
  appendBatch(persistenceId: string, messages: readonly M[], options?: AppendOptions): Promise<number[]>;
  /**
   * Ascending, from fromSequenceNr (inclusive); streamed in bounded memory. Entries deleted by
   * `truncateBefore` are not returned. A record that fails its checksum rejects the iteration with
   * `JournalCorruptedError`; nothing past it is served.
   */
  readFrom(
    persistenceId: string,
    fromSequenceNr: number,
    options?: ReadOptions,
  ): AsyncIterable<JournalEntry<M>>;
  /** 0 for an unknown id; not lowered by truncateBefore, also after reopening. */
  highestSequenceNr(persistenceId: string): Promise<number>;
  /**
   * Deletes the entries with sequenceNr < sequenceNr. `Number.MAX_SAFE_INTEGER` deletes everything.
   * The deletion is visible when the promise resolves and survives a reopen.
   */
  truncateBefore(persistenceId: string, sequenceNr: number): Promise<void>;
  /** Every id that has ever been appended to (including ids whose entries are all truncated). */
  persistenceIds(): AsyncIterable<string>;
  /** Flushes, releases locks, files and threads. Idempotent; afterwards every call rejects with JournalClosedError. */
  close(): Promise<void>;
}

/**
 * A journal that groups appends (from all persistence ids) into shared commits: appends that arrive
 * while a commit is in flight share the next one.
 */
export interface BatchedMessageJournal<M = unknown> extends MessageJournal<M> {
  /** The most appended entries one commit takes. Default 1000. */
  readonly maxBatchSize: number;
  /**
   * Default 100: the most an append waits before its batch starts committing. A lone append on an idle
   * journal does not wait at all; the delay only bounds how long a batch may queue behind a commit in flight.
   */
  readonly maxBatchDelayMs: number;
  /** Resolves when every append issued before the call is durable. */
  flush(): Promise<void>;
}

/** One snapshot of an actor's state. */
export interface SnapshotEntry<S = unknown> {
  readonly persistenceId: string;
  /** The last event folded into state. */
  readonly sequenceNr: number;
  readonly timestamp: number;
  readonly state: S;
}

/** Bounds are inclusive; `{}` equals no criteria. */
export interface SnapshotCriteria {
  readonly maxSequenceNr?: number;
  readonly maxTimestamp?: number;
}

/**
 * Stores snapshots, each protected by a checksum.
 *
 * Guarantees: a save is atomic (a crash leaves the old snapshot or the new one, never a torn one) and
 * durable when it resolves; saving twice at one sequenceNr replaces the earlier snapshot; corrupt
 * snapshots are skipped by `loadLatest`, reported, and never deleted automatically.
 */
export interface SnapshotStore<S = unknown> {
  save(persistenceId: string, sequenceNr: number, state: S): Promise<void>;
  /** Newest snapshot matching criteria whose checksum verifies; corrupt ones are skipped, reported, never deleted. */
  loadLatest(persistenceId: string, criteria?: SnapshotCriteria): Promise<SnapshotEntry<S> | undefined>;
  /** Deletes the snapshots matching criteria (all of them when criteria is omitted). */
  delete(persistenceId: string, criteria?: SnapshotCriteria): Promise<void>;
  /** Keeps the newest `keep` snapshots, deletes older ones; resolves to the number deleted. `prune(id, 0)` deletes all. */
  prune(persistenceId: string, keep: number): Promise<number>;
  /** Idempotent; afterwards every call rejects with JournalClosedError. */
  close(): Promise<void>;
}

/** A named factory of journals and snapshot stores, chosen by configuration. */
export interface PersistenceProvider {
  /** "memory", "file", "lmdb", ... */
  readonly name: string;
  createJournal<M>(options: Record<string, unknown>): Promise<MessageJournal<M>>;
  createSnapshotStore<S>(options: Record<string, unknown>): Promise<SnapshotStore<S>>;
  /**
   * Optional: checks provider-specific options before anything is opened and returns one message per
   * problem (unknown keys, wrong types). The config loader gathers these into one ConfigError.
   */
  validateOptions?(kind: 'journal' | 'snapshots', options: Record<string, unknown>): string[];
}
