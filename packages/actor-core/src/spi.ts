import type { HealthReport } from './health';
import type { JournalMetrics, SnapshotStoreMetrics } from './metrics';

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
  /**
   * The tags the event was appended with (see `AppendOptions.tags`), in the order given, duplicates
   * removed; `[]` when it was stored without tags, and for data written before journals stored tags.
   */
  readonly tags: readonly string[];
  /** Never set on an event: only a DeletionMarker (read with `deletions: true`) has `deleted: true`. */
  readonly deleted?: false;
}

/** A tag is a non-empty string of at most this many UTF-8 bytes. */
export const MAX_TAG_BYTES = 256;
/** An event carries at most this many tags. */
export const MAX_TAGS_PER_EVENT = 64;

export interface AppendOptions<M = unknown> {
  /**
   * Optimistic concurrency: reject with `SequenceConflictError` unless `highestSequenceNr(persistenceId)`
   * equals this, counting every append issued before this one. `0` means "this id has no entries yet".
   * The comparison is against the highest number ever assigned, truncation notwithstanding.
   * A conflicting append writes nothing.
   */
  readonly expectedSequenceNr?: number;
  /**
   * Tags stored with the event(s), for `EventQuery.eventsByTag`. Default: none (which costs nothing).
   *
   * - A list applies to every event of the append or batch.
   * - A function gives each event of a batch its own tags: `(message, index) => tags`, called once per
   *   message, in order, before anything is written; so one atomic `appendBatch` can carry events with
   *   different tags (the runtime's `tagger` uses this form).
   *
   * Each tag must be a non-empty, well-formed string (`TypeError` otherwise) of at most 256 UTF-8 bytes,
   * and an event gets at most 64 tags (`RangeError` otherwise); a tag given twice is stored once. A bad
   * tag, or a function that throws, rejects the whole call and stores nothing.
   */
  readonly tags?: readonly string[] | ((message: M, index: number) => readonly string[]);
}

export interface ReadOptions {
  /** Inclusive upper bound. Default: no bound. */
  readonly toSequenceNr?: number;
  /** At most this many entries; `0` returns nothing. Default: no limit. */
  readonly max?: number;
  /**
   * Default false. True (on a journal that declares `deletion`): the id's deletion marker, if it has one,
   * is served too, as a `DeletionMarker` in its place in sequence order (recovery uses it to start afresh).
   */
  readonly deletions?: boolean;
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
  /**
   * What this journal can do beyond the methods above, declared once on the instance. Tools and the
   * conformance kit ask the guards (`canImport`, `canRepair`, `canFlush`, ...) instead of probing for
   * methods or checking a provider's name.
   */
  readonly capabilities: JournalCapabilities;
  /** Durable (per the journal's sync setting) before it resolves; resolves to the assigned sequenceNr. */
  append(persistenceId: string, message: M, options?: AppendOptions<M>): Promise<number>;
  /** Atomic: all messages or none become visible; consecutive sequenceNrs. */
  appendBatch(persistenceId: string, messages: readonly M[], options?: AppendOptions<M>): Promise<number[]>;
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
  /**
   * Only snapshots at or above this sequenceNr, e.g. `delete(id, { minSequenceNr: 4 })` removes the
   * snapshots past a repair that kept events 1..3 (`cairn snapshots delete <id> --above 3`).
   */
  readonly minSequenceNr?: number;
  /** Only snapshots taken at or after this time (ms since epoch). */
  readonly minTimestamp?: number;
}

/**
 * Stores snapshots, each protected by a checksum.
 *
 * Guarantees: a save is atomic (a crash leaves the old snapshot or the new one, never a torn one) and
 * durable when it resolves; saving twice at one sequenceNr replaces the earlier snapshot; corrupt
 * snapshots are skipped by `loadLatest`, reported, and never deleted automatically.
 */
export interface SnapshotStore<S = unknown> {
  /** What this store can do beyond the methods above, declared once on the instance. */
  readonly capabilities: SnapshotStoreCapabilities;
  /**
   * Atomic and durable when it resolves. Bad arguments reject with TypeError/RangeError; a state the
   * serializer cannot encode rejects with WriteRejectedError (ERR_WRITE_REJECTED), storing nothing.
   */
  save(persistenceId: string, sequenceNr: number, state: S): Promise<void>;
  /** Newest snapshot matching criteria whose checksum verifies; corrupt ones are skipped, reported, never deleted. */
  loadLatest(persistenceId: string, criteria?: SnapshotCriteria): Promise<SnapshotEntry<S> | undefined>;
  /** Deletes the snapshots matching criteria (all of them when criteria is omitted). */
  delete(persistenceId: string, criteria?: SnapshotCriteria): Promise<void>;
  /** Keeps the newest `keep` snapshots, deletes older ones; resolves to the number deleted. `prune(id, 0)` deletes all. */
  prune(persistenceId: string, keep: number): Promise<number>;
  /** Idempotent; afterwards every call rejects with SnapshotStoreClosedError (code ERR_SNAPSHOT_STORE_CLOSED). */
  close(): Promise<void>;
}

// ---- deletion ----

/**
 * What `deletePersistenceId` leaves in an id's place: one record, numbered after the id's old highest, that
 * stands for everything before it. `readFrom` and the queries skip it unless asked for it
 * (`deletions: true`); it carries every tag the id's events carried, so a read model fed by
 * `eventsByTag` hears of the deletion too. Events appended afterwards (a new incarnation) follow it.
 */
export interface DeletionMarker {
  readonly deleted: true;
  readonly persistenceId: string;
  /** The marker's own number: the id's highest when it was deleted, plus one. */
  readonly sequenceNr: number;
  /** When the id was deleted (ms since epoch). */
  readonly timestamp: number;
  /** Every tag the deleted events carried (at most 64). */
  readonly tags: readonly string[];
  /** A marker has no message; present so `entry.message` reads on the union without narrowing. */
  readonly message: undefined;
}

/** A deletion marker with its place in the global order (queries with `deletions: true`). */
export interface DeletionEnvelope extends DeletionMarker {
  /** As EventEnvelope.offset. */
  readonly offset: string;
}

/**
 * A journal that can delete a persistence id whole (capability `deletion`): `deletePersistenceId(id)`
 * makes every event of the id unreadable at once and leaves a deletion marker numbered after its highest,
 * so the id never reuses a sequence number (a new incarnation continues after the marker). Snapshots are
 * kept by the snapshot store: delete them there (`snapshots.delete(id)`), or use the runtime's
 * `system.deleteEntity`, which does both. The bytes leave the disk later, per backend (see the README).
 */
export interface DeletableJournal<M = unknown> extends MessageJournal<M> {
  /**
   * Resolves once the id's events are unreadable (truncated) and its marker is durable; an id that was
   * never written, or is deleted already with nothing appended since, is left as it is. Rejects with
   * ReadOnlyError on a read-only journal and with the storage error otherwise; a deletion that failed
   * part way can be run again.
   */
  deletePersistenceId(persistenceId: string): Promise<void>;
  /** As MessageJournal.readFrom; with `deletions: true` the id's marker is served too. */
  readFrom(
    persistenceId: string,
    fromSequenceNr: number,
    options: ReadOptions & { readonly deletions: true },
  ): AsyncIterable<JournalEntry<M> | DeletionMarker>;
  readFrom(
    persistenceId: string,
    fromSequenceNr: number,
    options?: ReadOptions,
  ): AsyncIterable<JournalEntry<M>>;
}

/** What a compaction freed: the journal's bytes on disk before and after. */
export interface CompactionResult {
  readonly bytesBefore: number;
  readonly bytesAfter: number;
}

/** A journal that can give the space of truncated and deleted events back at once (capability `compact`). */
export interface CompactableJournal<M = unknown> extends MessageJournal<M> {
  /**
   * Rewrites or removes whatever storage holds only truncated or deleted events, the part still being
   * written included, so their bytes leave the disk when it resolves. Appends and reads go on meanwhile.
   * Rejects with ReadOnlyError on a read-only journal.
   */
  compact(): Promise<CompactionResult>;
}

/** True when the journal declares `compact`: it is a CompactableJournal. */
export function canCompact<M>(journal: MessageJournal<M>): journal is CompactableJournal<M> {
  return journal.capabilities?.compact === true;
}

/** True when the journal declares `deletion`: it is a DeletableJournal. */
export function canDelete<M>(journal: MessageJournal<M>): journal is DeletableJournal<M> {
  return journal.capabilities?.deletion === true;
}

// ---- read side ----

/** An entry with its position in the journal's global order. */
export interface EventEnvelope<M = unknown> extends JournalEntry<M> {
  /**
   * Opaque: pass it back as `after` (to any query of this journal) to resume just after this event. It
   * stays valid across close and reopen, compaction and truncation, and names the journal it came from:
   * another journal refuses it with a `TypeError`. Do not parse it; compare offsets only for equality.
   */
  readonly offset: string;
}

export interface QueryOptions {
  /** Exclusive: resume just after this offset (of this journal). Default: from the first surviving event. */
  readonly after?: string;
  /**
   * Default false: the query ends at the last event committed when it started (its first `next()`).
   * True: after that it waits for new events and delivers them as they commit, until the loop breaks,
   * the signal aborts or the journal closes.
   */
  readonly live?: boolean;
  /** Aborting ends the query: the pending or next `next()` rejects with an error named `AbortError`. */
  readonly signal?: AbortSignal;
  /**
   * Default false. True: where an id was deleted (`deletePersistenceId`, `system.deleteEntity`), the query
   * delivers a `DeletionEnvelope` (`deleted: true`) in the global order, so a read model can erase the id
   * too. A tag query delivers it when the id's deleted events carried the tag.
   */
  readonly deletions?: boolean;
}

export interface EventsByIdOptions {
  /** Inclusive lower bound. Default 1. */
  readonly fromSequenceNr?: number;
  /** Inclusive upper bound; a live query ends once it delivered this sequenceNr. Default: none. */
  readonly toSequenceNr?: number;
  /** An offset of this journal (from any of its queries); resumes just after it. */
  readonly after?: string;
  /** As `QueryOptions.live`. */
  readonly live?: boolean;
  /** As `QueryOptions.signal`. */
  readonly signal?: AbortSignal;
  /** As `QueryOptions.deletions`. */
  readonly deletions?: boolean;
}

/** Query options asking for deletion markers: the query's items are events or DeletionEnvelopes. */
export type WithDeletions<O> = O & { readonly deletions: true };

/**
 * Reads a journal's events in its one global order: what read models and projections are built from.
 * Implemented by every built-in journal (memory, file, lmdb, postgres); ask `canQuery(journal)` before
 * using it on a journal you did not open yourself.
 *
 * Guarantees:
 * - One total order per journal, the same for every reader and every run, consistent with real time:
 *   if append A resolved before append B was called, A comes first; a batch's events are adjacent and in
 *   order; per persistence id, ascending sequenceNr.
 * - A query never returns an event that is not committed, and never skips one that is, also while
 *   appends run concurrently.
 * - One offset space per journal: an offset from any of its queries is valid as `after` for any other.
 *   It stays valid across close/reopen, compaction and truncation; resuming after a truncated event
 *   continues at the next surviving one. Truncated events are never returned.
 * - A malformed offset, or one of another journal, rejects the first `next()` with a `TypeError` that
 *   names it. Other bad arguments (an empty tag, fromSequenceNr < 1) are `TypeError`/`RangeError` too.
 * - Iterating is lazy and bounded: a consumer that stops pulling makes the query hold at most one page of
 *   events; the journal never buffers for it, however far the writers get ahead.
 * - A live query waits for commits without a timer or poll of its own (waiting costs a promise);
 *   `break` (or `return()`) releases everything it held; an aborted `signal` ends it with an error named
 *   `AbortError`; closing the journal ends it with `JournalClosedError`.
 */
export interface EventQuery<M = unknown> {
  /** Every event of the journal, in the global order. */
  allEvents(options: WithDeletions<QueryOptions>): AsyncIterable<EventEnvelope<M> | DeletionEnvelope>;
  allEvents(options?: QueryOptions): AsyncIterable<EventEnvelope<M>>;
  /** The events stored with `tag`, in the global order. */
  eventsByTag(
    tag: string,
    options: WithDeletions<QueryOptions>,
  ): AsyncIterable<EventEnvelope<M> | DeletionEnvelope>;
  eventsByTag(tag: string, options?: QueryOptions): AsyncIterable<EventEnvelope<M>>;
  /** One id's events, ascending sequenceNr (which is also the global order), optionally bounded. */
  eventsByPersistenceId(
    persistenceId: string,
    options: WithDeletions<EventsByIdOptions>,
  ): AsyncIterable<EventEnvelope<M> | DeletionEnvelope>;
  eventsByPersistenceId(persistenceId: string, options?: EventsByIdOptions): AsyncIterable<EventEnvelope<M>>;
  /**
   * The offset of the last committed event (undefined when nothing was ever committed), so
   * `after: await headOffset()` delivers only events committed afterwards. After truncation it may be the
   * offset of a truncated event: still valid as `after`.
   */
  headOffset(): Promise<string | undefined>;
}

/**
 * Where projections keep how far they got: the offset of the last event each one handled, by name.
 * Kept by the journal's provider next to the journal's data (`createPersistence(...).offsets`).
 */
export interface OffsetStore {
  /** The offset saved last under `projectionName`, or undefined when none was saved. */
  load(projectionName: string): Promise<string | undefined>;
  /**
   * Saves `offset` under `projectionName`, replacing the previous one; atomic (a crash leaves the old
   * offset or the new one) and durable when it resolves (per the store's sync setting). A name that is
   * not a non-empty string, or an offset that is not a string, is a `TypeError` and saves nothing.
   */
  save(projectionName: string, offset: string): Promise<void>;
}

/**
 * True when the journal declares (in its `capabilities`) that it implements EventQuery. The way to ask:
 * never test for the methods or a provider's name.
 */
export function canQuery<M>(journal: MessageJournal<M>): journal is MessageJournal<M> & EventQuery<M> {
  return journal.capabilities?.query === true;
}

// ---- capabilities: declared once on the instance, asked for through the guards below ----

/**
 * What a journal supports beyond MessageJournal, declared once as `readonly capabilities` on the instance.
 * A flag left out means "no". Each optional flag promises the interface named beside it; the guards below
 * (`canImport`, `canRepair`, `canFlush`, ...) check the flag, so callers never cast or test a provider's name.
 */
export interface JournalCapabilities {
  /** Data survives close() and a reopen of the same location. */
  readonly persistent: boolean;
  /** Several commits may be in flight at once (writes of distinct ids). Default false. */
  readonly concurrentCommits?: boolean;
  /**
   * The journal can be opened read-only (`readOnly: true` among its options): no lock, nothing created or
   * changed, every write rejects with ReadOnlyError. Tools such as `cairn verify` open it so beside a live
   * writer; a journal without it is not opened by them unless the user asks for a writable open.
   */
  readonly readOnly?: boolean;
  /** ImportableJournal: `importEntries` / `importTruncated`, which `cairn copy` writes through. */
  readonly import?: boolean;
  /** RepairableJournal: `repairAfterCorruption`, which `cairn repair --truncate-after-corruption` calls. */
  readonly repair?: boolean;
  /** FlushableJournal (a BatchedMessageJournal): `flush()`, `maxBatchSize`, `maxBatchDelayMs`. */
  readonly flush?: boolean;
  /** MeteredJournal: `metrics()` (see JournalMetrics), which @cairn/metrics exposes. */
  readonly metrics?: boolean;
  /**
   * The journal implements EventQuery (allEvents, eventsByTag, eventsByPersistenceId, headOffset): the
   * backend implements the ordered-read hooks (`_journalId`, `_headPosition`, `_readOrdered`). Ask with
   * `canQuery(journal)`. Default false: the query methods reject with a TypeError saying so.
   */
  readonly query?: boolean;
  /**
   * DeletableJournal: `deletePersistenceId(id)` deletes an id whole and leaves a deletion marker that
   * keeps its sequence numbers from being reused and tells queries (`deletions: true`) of the deletion.
   */
  readonly deletion?: boolean;
  /**
   * CompactableJournal: `compact()` gives the space of truncated and deleted events back to the disk now,
   * instead of at the backend's own pace (`cairn compact`).
   */
  readonly compact?: boolean;
  /**
   * Live queries notice events other processes commit to the same storage (the backend implements
   * `_watchForeignCommits`), so a reader beside a running application, such as `cairn events --follow`,
   * sees its new events. Default false: a live query sees only this process's commits.
   */
  readonly foreignCommits?: boolean;
  /**
   * Several processes may write the same store at once. Then the core never trusts what it remembers of
   * an id's highest sequenceNr: `highestSequenceNr` (and so every recovery) reads storage; an append with
   * `expectedSequenceNr` is judged by storage, in the commit that writes it; an append without one is
   * numbered when its commit starts and, when another process took that number first, numbered again and
   * retried, so it never fails with a conflict. The backend's `_write` checks, per id and in the same
   * atomic step, that the stored highest is the one the id's first event continues, stores the other ids'
   * writes, and resolves to the conflicting ids (WriteConflicts) instead of throwing. Default false.
   */
  readonly sharedWriters?: boolean;
  /**
   * The journal grants exclusive leases per persistenceId (LeaseProvider: acquireLease), fencing each
   * holder's appends by the lease's epoch. `spawn(behavior, { exclusive: true })` asks for one. Default false.
   */
  readonly leases?: boolean;
  /**
   * HealthReporting: `health()` reports what an operator pages on (open, the last commit, the write-ahead
   * lag against the backpressure bounds, corruption seen since open, disk use against maxDiskBytes, and
   * the backend's own checks such as its lock). Ask with `canReportHealth(journal)`.
   */
  readonly health?: boolean;
}

/** What a snapshot store supports beyond SnapshotStore, declared once as `readonly capabilities`. */
export interface SnapshotStoreCapabilities {
  /** Data survives close() and a reopen of the same location. */
  readonly persistent: boolean;
  /** The store can be opened read-only (`readOnly: true`): save, delete and prune reject with ReadOnlyError. */
  readonly readOnly?: boolean;
  /** ListableSnapshotStore: `persistenceIds()` lists every id that has a snapshot. */
  readonly listIds?: boolean;
  /**
   * ImportableSnapshotStore: `importSnapshot(entry)` stores a snapshot with its own timestamp (what
   * `cairn copy` writes through, so copied snapshots keep their times).
   */
  readonly import?: boolean;
  /** MeteredSnapshotStore: `metrics()` (see SnapshotStoreMetrics). */
  readonly metrics?: boolean;
  /** HealthReporting: `health()` (open, the last save, corrupt snapshots skipped, the backend's lock). */
  readonly health?: boolean;
}

/** A store or system that reports its health (capability `health`). */
export interface HealthReporting {
  /** Synchronous and cheap: for liveness probes, health endpoints and metric scrapes. */
  health(): HealthReport;
}

/** True when the journal or snapshot store declares the `health` capability (HealthReporting). */
export function canReportHealth<T extends MessageJournal | SnapshotStore>(
  store: T,
): store is T & HealthReporting {
  return store.capabilities?.health === true;
}

/** A journal that tools can copy into: entries keep their sequence numbers and timestamps. */
export interface ImportableJournal<M = unknown> extends MessageJournal<M> {
  /**
   * Writes entries that already have their sequence numbers and timestamps, all of `persistenceId`,
   * consecutive, continuing the id's highest exactly (an id that never had events may start above 1:
   * the numbers below are recorded as truncated). Anything else is a RangeError and writes nothing.
   * Atomic and durable like appendBatch.
   */
  importEntries(persistenceId: string, entries: readonly JournalEntry<M>[]): Promise<void>;
  /**
   * Writes entries of several ids in the order given (at most the journal's maxBatchSize), each id's
   * consecutive and continuing its highest as for importEntries, in one commit after those in flight:
   * the journal's global order then has them in the order given. For copying a journal in its global
   * order. Anything invalid is a RangeError or TypeError and writes nothing.
   */
  importInOrder(entries: readonly JournalEntry<M>[]): Promise<void>;
  /**
   * Records that an id which never had events had them up to `highest`, all truncated: highestSequenceNr
   * answers `highest` and the next append gets `highest + 1`. RangeError, changing nothing, when the id
   * has events or a higher highest.
   */
  importTruncated(persistenceId: string, highest: number): Promise<void>;
}

/** What one `repairAfterCorruption` cut, and where the cut bytes went. */
export interface CorruptionRepairResult {
  /** The last good sequenceNr kept; highestSequenceNr afterwards. */
  readonly keptThrough: number;
  /** The sequenceNrs cut (including unreadable ones), first..last. */
  readonly removed: { readonly first: number; readonly last: number } | undefined;
  /** Where the cut bytes went (never deleted). */
  readonly quarantine: string;
  /** How many bytes of records were cut, when the journal says. */
  readonly bytes?: number;
}

/** A journal that can cut one id back to its last good record after corruption. */
export interface RepairableJournal<M = unknown> extends MessageJournal<M> {
  /**
   * Cuts `persistenceId` back to its last good record, keeping the cut records' bytes in a quarantine
   * (never deleted) and lowering highestSequenceNr to the last good sequenceNr, so the actor's next
   * append reuses the lost numbers consistently. Rejects, changing nothing, when the id reads back clean.
   */
  repairAfterCorruption(persistenceId: string): Promise<CorruptionRepairResult>;
}

/** A journal whose appends share commits and that can wait for them: see BatchedMessageJournal. */
export type FlushableJournal<M = unknown> = BatchedMessageJournal<M>;

/** A journal that counts what it does. */
export interface MeteredJournal<M = unknown> extends MessageJournal<M> {
  metrics(): JournalMetrics;
}

/** What is known of a stored snapshot without loading its state. */
export interface SnapshotInfo {
  readonly sequenceNr: number;
  /** Milliseconds since the epoch, when the snapshot was saved (or the original time, when imported). */
  readonly timestamp: number;
}

/**
 * A snapshot store that can list the ids it holds snapshots of, and each id's snapshots, without loading
 * a state (capability `listIds`; ask with `canListSnapshotIds(store)`). What tools such as `cairn ls`,
 * `cairn verify` and `cairn copy` use to find ids that have snapshots but no events.
 */
export interface ListableSnapshotStore<S = unknown> extends SnapshotStore<S> {
  /**
   * Every persistenceId with at least one snapshot (corrupt ones included), each once, in no set order;
   * an id whose snapshots were all deleted is not listed. Read page by page, in bounded memory. Saves
   * and deletes that resolved before the call are reflected; ones in flight may or may not be.
   */
  persistenceIds(): AsyncIterable<string>;
  /**
   * The snapshots of `persistenceId` by ascending sequenceNr (one per sequenceNr, corrupt ones included:
   * nothing is loaded or checked), `[]` when it has none.
   */
  listSnapshots(persistenceId: string): Promise<SnapshotInfo[]>;
}

/** A snapshot store that tools can copy into: snapshots keep their timestamps. */
export interface ImportableSnapshotStore<S = unknown> extends SnapshotStore<S> {
  /**
   * Stores `entry` as it is (its timestamp included), replacing a snapshot at the same sequenceNr;
   * checked and durable like `save`.
   */
  importSnapshot(entry: SnapshotEntry<S>): Promise<void>;
}

/** A snapshot store that counts what it does. */
export interface MeteredSnapshotStore<S = unknown> extends SnapshotStore<S> {
  metrics(): SnapshotStoreMetrics;
}

/** True when the journal declares `import`: it is an ImportableJournal. */
export function canImport<M>(journal: MessageJournal<M>): journal is ImportableJournal<M> {
  return journal.capabilities?.import === true;
}

/** True when the journal declares `repair`: it is a RepairableJournal. */
export function canRepair<M>(journal: MessageJournal<M>): journal is RepairableJournal<M> {
  return journal.capabilities?.repair === true;
}

/** True when the journal declares `flush`: it is a BatchedMessageJournal with flush(). */
export function canFlush<M>(journal: MessageJournal<M>): journal is FlushableJournal<M> {
  return journal.capabilities?.flush === true;
}

/** True when the journal declares `metrics`. */
export function hasJournalMetrics<M>(journal: MessageJournal<M>): journal is MeteredJournal<M> {
  return journal.capabilities?.metrics === true;
}

/** True when the store declares `listIds`: it is a ListableSnapshotStore. */
export function canListSnapshotIds<S>(store: SnapshotStore<S>): store is ListableSnapshotStore<S> {
  return store.capabilities?.listIds === true;
}

/** True when the store declares `import`: it is an ImportableSnapshotStore. */
export function canImportSnapshots<S>(store: SnapshotStore<S>): store is ImportableSnapshotStore<S> {
  return store.capabilities?.import === true;
}

/** True when the store declares `metrics`. */
export function hasSnapshotMetrics<S>(store: SnapshotStore<S>): store is MeteredSnapshotStore<S> {
  return store.capabilities?.metrics === true;
}

/**
 * True when the journal declares `foreignCommits`: its live queries see events other processes commit to
 * the same storage (so a reader beside a running application, such as `cairn events --follow`, works).
 */
export function seesForeignCommits<M>(journal: MessageJournal<M>): boolean {
  return journal.capabilities?.foreignCommits === true;
}

/** True when the journal or store can be opened read-only (declares `readOnly`). */
export function canOpenReadOnly(store: MessageJournal | SnapshotStore): boolean {
  return store.capabilities?.readOnly === true;
}

/** The exclusive right to run one projection name, from `ProjectionRecordStore.lockProjection`. */
export interface ProjectionLock {
  /** Gives the name up; idempotent. */
  release(): Promise<void>;
}

/**
 * An OffsetStore that also keeps what operators need about projections, declared in
 * `capabilities.projectionRecords` (ask with `keepsProjectionRecords`): a status record beside each
 * offset (an opaque string to the store; @cairn/projection writes JSON), the list of names, deletion of
 * an offset, and a lock per name that every process opening the same storage respects, so one projection
 * runs in one place at a time. A lock held by a process that died is released (by the OS or by going
 * stale); `projectionLocked` tells whether one is held now. Names are checked as `load`/`save` check them.
 */
export interface ProjectionRecordStore extends OffsetStore {
  readonly capabilities: { readonly projectionRecords: true };
  /** Every projection name with a saved offset or status, sorted. */
  names(): Promise<string[]>;
  /** Removes the saved offset (the projection then starts from the first event); the status stays. */
  deleteOffset(projectionName: string): Promise<void>;
  /** Replaces the status record; atomic and durable like `save`. */
  saveStatus(projectionName: string, status: string): Promise<void>;
  loadStatus(projectionName: string): Promise<string | undefined>;
  /** True while some process (this one included) holds the name's lock. */
  projectionLocked(projectionName: string): Promise<boolean>;
  /** Takes the name's lock, or rejects with JournalLockedError naming the holder when another has it. */
  lockProjection(projectionName: string): Promise<ProjectionLock>;
}

/** True when the offset store declares (in its `capabilities`) that it keeps projection records and locks. */
export function keepsProjectionRecords(offsets: OffsetStore): offsets is ProjectionRecordStore {
  const capabilities = (offsets as { capabilities?: { projectionRecords?: unknown } }).capabilities;
  return capabilities?.projectionRecords === true;
}

/**
 * An offset store that saves an offset in the same transaction as a read model's writes, declared in
 * `capabilities.exactlyOnce` (ask with `canTransact`): the LMDB provider's, whose read models live in the
 * journal's environment. `transactSync(name, offset, body)` runs the synchronous `body` (which writes the
 * read model through the store's own databases) and saves `offset` in one write transaction: after a crash
 * both are there or neither is, so each event's effect is applied exactly once. If `body` throws, nothing
 * of it is written and the error is rethrown; a `body` that returns a promise is a TypeError (its awaited
 * part would run outside the transaction), nothing written.
 */
export interface TransactionalOffsetStore extends OffsetStore {
  readonly capabilities: { readonly exactlyOnce: true };
  transactSync<T>(projectionName: string, offset: string, body: () => T): T;
}

/** True when the offset store declares (in its `capabilities`) that it offers `transactSync`. */
export function canTransact(offsets: OffsetStore): offsets is TransactionalOffsetStore {
  const capabilities = (offsets as { capabilities?: { exactlyOnce?: unknown } }).capabilities;
  return capabilities?.exactlyOnce === true;
}

/**
 * An offset store that saves an offset in the same database transaction as a read model's writes, where
 * that transaction is asynchronous (a database server's), declared in `capabilities.transactions` (ask
 * with `canTransactAsync`): the postgres provider's. `transact(name, offset, body)` begins a transaction,
 * runs `body(tx)`, which writes the read model through `tx` (the transaction's client; its type is the
 * store's, e.g. @cairn/postgres's PostgresTransaction), saves `offset` in it and commits: after a crash both
 * are there or neither is, so each event's effect is applied exactly once. If `body` throws or rejects, the
 * transaction rolls back, nothing of it is written, and the error is rethrown.
 */
export interface AsyncTransactionalOffsetStore<Tx = unknown> extends OffsetStore {
  readonly capabilities: { readonly transactions: true };
  transact<T>(projectionName: string, offset: string, body: (tx: Tx) => T | Promise<T>): Promise<T>;
}

/** True when the offset store declares (in its `capabilities`) that it offers `transact`. */
export function canTransactAsync(offsets: OffsetStore): offsets is AsyncTransactionalOffsetStore {
  const capabilities = (offsets as { capabilities?: { transactions?: unknown } }).capabilities;
  return capabilities?.transactions === true;
}

/** A named factory of journals and snapshot stores, chosen by configuration. */
/** One kind of file a store keeps in its directory, as `PersistenceProvider.describeFiles` reports it. */
export interface StoreFiles {
  /** What they are, plural, as the provider's README names them: "segments", "snapshot files". */
  readonly label: string;
  readonly count: number;
  /** Their sizes added up. */
  readonly bytes: number;
}

export interface PersistenceProvider {
  /** "memory", "file", "lmdb", ... */
  readonly name: string;
  /**
   * The provider keeps its data at `path` (a directory): the config loader requires one, and tools such
   * as `cairn` take it from the command line. Default false.
   */
  readonly requiresPath?: boolean;
  createJournal<M>(options: Record<string, unknown>): Promise<MessageJournal<M>>;
  createSnapshotStore<S>(options: Record<string, unknown>): Promise<SnapshotStore<S>>;
  /**
   * Optional: checks provider-specific options before anything is opened and returns one message per
   * problem (unknown keys, wrong types). The config loader gathers these into one ConfigError. Check
   * against the same schema the store's open() checks (see checkOpenOptions), so the two cannot drift.
   */
  validateOptions?(kind: 'journal' | 'snapshots', options: Record<string, unknown>): string[];
  /**
   * Optional, for a provider that keeps its data in a directory: true when `directory` (which exists)
   * holds this provider's journal (`kind` 'journal') or snapshot store. Tools pointed at a bare directory
   * (`cairn verify --journal <dir>`) ask each provider instead of knowing their file layouts. Answer
   * from the format marker (see `storeBackendOf`) and the files only this provider writes; never create
   * or change anything.
   */
  detect?(directory: string, kind: 'journal' | 'snapshots'): Promise<boolean>;
  /**
   * Optional, for a provider that keeps its data in a directory: the kinds of file its `kind` of store
   * keeps in `directory` (which exists), each counted and sized, for an operator (`cairn stats` shows
   * them). Tools ask this instead of knowing the provider's file layout. Reads only; never creates or
   * changes anything.
   */
  describeFiles?(directory: string, kind: 'journal' | 'snapshots'): Promise<StoreFiles[]>;
  /**
   * Optional: where a store opened with `options` keeps its data, in one line for tools' messages (the
   * stores `cairn verify` names as checked, say), e.g. `postgres postgres://app@db:5432/prod schema "cairn"`.
   * Never holds a secret: a password in the options is left out or masked. Without it, tools print the
   * provider's name and `path`.
   */
  describe?(kind: 'journal' | 'snapshots', options: Record<string, unknown>): string;
  /**
   * Optional: the OffsetStore kept with `journal` (which this provider's `createJournal` opened with
   * `options`), e.g. files beside the journal's data or a table in its database. It lives as long as the
   * journal: after the journal closes, its calls reject with JournalClosedError. A provider without it
   * leaves `createPersistence(...).offsets` undefined.
   */
  createOffsetStore?(
    journal: MessageJournal<unknown>,
    options: Record<string, unknown>,
  ): Promise<OffsetStore>;
}
