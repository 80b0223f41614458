import {
  Backpressure,
  type BackpressureMode,
  DEFAULT_MAX_PENDING_BYTES,
  DEFAULT_MAX_PENDING_EVENTS,
} from './backpressure';
import { CommitSignal } from './commit-signal';
import {
  DELETION_MARKER_PAYLOAD,
  DELETION_MARKER_SERIALIZER_ID,
  deletionEnvelope,
  isDeletionMarker,
  withoutMarkers,
} from './deletion';
import {
  BackpressureError,
  type CorruptionLocation,
  DiskLimitError,
  isPersistenceError,
  JournalClosedError,
  JournalCorruptedError,
  ReadOnlyError,
  SequenceConflictError,
  StorageError,
  WriteRejectedError,
} from './errors';
import { GroupCommit, type PartialCommit, type QueuedWrite } from './group-commit';
import { HEALTH_NEAR_LIMIT, type HealthCheck, type HealthReport, healthReport, LastWrite } from './health';
import { IdReader, type IdReaderHost } from './id-reader';
import { type JournalMetrics, LatencyRecorder } from './metrics';
import { OffsetCodec } from './offset-codec';
import {
  type OrderedFilter,
  type OrderedSource,
  type Position,
  type PositionedEvent,
  type QueryItem,
  type QueryParameters,
  queryIterator,
} from './query-reader';
import { defaultReporter, type Reporter } from './report';
import { resolveSerializer, type Serializer, type SerializerRegistry, serializersFor } from './serializer';
import type {
  AppendOptions,
  BatchedMessageJournal,
  DeletableJournal,
  DeletionEnvelope,
  DeletionMarker,
  EventEnvelope,
  EventQuery,
  EventsByIdOptions,
  ImportableJournal,
  JournalCapabilities,
  JournalEntry,
  MeteredJournal,
  QueryOptions,
  ReadOptions,
  WithDeletions,
} from './spi';
import { MAX_TAGS_PER_EVENT } from './spi';
import { checkTag, checkTags, NO_TAGS, tagsForMessages } from './tags';
import { checkCount, checkOptionalObject, checkPersistenceId, checkSequenceNr } from './validation';

/** One event as a backend stores it: the message already serialized. */
export interface StoredEvent {
  readonly sequenceNr: number;
  readonly timestamp: number;
  /** The id of the Serializer that encoded `payload`. */
  readonly serializerId: number;
  readonly payload: Uint8Array;
  /**
   * The event's tags, already validated by the core (non-empty strings of at most 256 UTF-8 bytes, at
   * most 64, no duplicates). Undefined or empty: none; the core passes undefined for untagged events, so
   * a backend should store "no tags" in no bytes and return undefined (or []) for them.
   */
  readonly tags?: readonly string[];
}

/**
 * A stored event whose payload is `bytes[start, end)` of a buffer the backend read a page into. The
 * core decodes it in place (Serializer.decodeRange) rather than through a view per event, which is a
 * good part of a replay's cost; `payload` makes the view when something asks for it.
 */
export class StoredEventInBuffer implements StoredEvent {
  constructor(
    readonly sequenceNr: number,
    readonly timestamp: number,
    readonly serializerId: number,
    readonly bytes: Uint8Array,
    readonly start: number,
    readonly end: number,
    readonly tags?: readonly string[],
  ) {}

  get payload(): Uint8Array {
    return this.bytes.subarray(this.start, this.end);
  }
}

/** A StoredEventInBuffer with its id and global position, for `_readOrdered`. */
export class PositionedEventInBuffer extends StoredEventInBuffer implements PositionedEvent {
  constructor(
    readonly persistenceId: string,
    readonly position: number,
    sequenceNr: number,
    timestamp: number,
    serializerId: number,
    bytes: Uint8Array,
    start: number,
    end: number,
    tags?: readonly string[],
  ) {
    super(sequenceNr, timestamp, serializerId, bytes, start, end, tags);
  }
}

/** One append or appendBatch: its events must become visible all together or not at all. */
export interface JournalWrite {
  readonly persistenceId: string;
  /** Consecutive sequence numbers, ascending, continuing the id's highest. */
  readonly events: readonly StoredEvent[];
}

/**
 * What `_write` of a journal with the `sharedWriters` capability resolves to: the ids whose writes were
 * NOT stored because the stored highest sequenceNr was not the one their first event continues (another
 * process wrote the id meanwhile), each with the highest actually stored; or, for an id whose writes must
 * not be tried again (the writer's lease passed to another holder), the error they fail with. Every write
 * of every other id of the call is durable. An empty map (or undefined): everything was stored.
 */
export type WriteConflicts = ReadonlyMap<string, number | Error>;

/** Settings shared by every journal built on AbstractMessageJournal. */
export interface JournalOptions {
  /** The most entries one commit takes. Default 1000. */
  readonly maxBatchSize?: number;
  /**
   * The most an append waits before its batch starts committing. Default 100 ms. A lone append on an idle
   * journal never waits: this only bounds how long appends queue behind a commit in flight.
   */
  readonly maxBatchDelayMs?: number;
  /** How messages are encoded: a Serializer, or "msgpack" (default) or "json". Reads decode with whatever wrote. */
  readonly serializer?: Serializer | string | number;
  /** Where warnings (a torn tail cut back, say) go. Default: process.emitWarning. */
  readonly reporter?: Reporter;
  /**
   * Default false. `true` opens the journal for reading only: the backend opens its storage read-only
   * (no lock, nothing created or changed) and the core refuses every write (append, appendBatch,
   * truncateBefore, the imports, and a backend's own tools) with ReadOnlyError, before anything is queued.
   * Only for a backend that declares the `readOnly` capability.
   */
  readonly readOnly?: boolean;
  /** Where the data lives (a directory, for the built-in backends); named in error messages. */
  readonly path?: string;
  /**
   * The most events the journal holds for commits not yet done (numbered and queued, or in a commit in
   * flight). Default 100,000. Past it, an append waits or is refused (`onBackpressure`). Bounds memory
   * when storage is slower than the appends: without a bound, a stalled disk grows the queue until the
   * process runs out of memory. An append larger than the bound on its own goes through when nothing
   * else is pending, and is committed alone.
   */
  readonly maxPendingEvents?: number;
  /**
   * The most serialized payload bytes the journal holds for commits not yet done. Default 64 MiB. Same
   * rules as maxPendingEvents; whichever is reached first applies.
   */
  readonly maxPendingBytes?: number;
  /**
   * What an append does when it would pass maxPendingEvents or maxPendingBytes. `'wait'` (default): it
   * waits for earlier commits to finish, in the order appends were issued (an id's appends keep their
   * order), and its promise settles with its own commit; awaiting callers (actors) slow down to the
   * disk's pace. `'reject'`: it rejects at once with BackpressureError (ERR_BACKPRESSURE), numbering and
   * storing nothing, for callers that would rather shed load than queue it (say, answer 503).
   */
  readonly onBackpressure?: BackpressureMode;
  /**
   * A cap on the disk the journal's data may use, in bytes, as the backend measures it (the file journal:
   * its live segments; LMDB: the environment's used pages, since data.mdb itself never shrinks). Default:
   * none. At the cap, appends reject with DiskLimitError (ERR_DISK_LIMIT), storing nothing; reads,
   * truncation and everything else go on (a truncation's own record may pass the cap), and what
   * truncation frees (once the backend reclaims it) lifts the limit. An append is refused when the bytes
   * in use plus its payload and what is pending would pass the cap, so the cap is approached, not passed,
   * by appends (by at most one commit's record overhead). Only for a backend that measures its use
   * (`_diskBytesUsed`); others refuse the option.
   */
  readonly maxDiskBytes?: number;
}

export const DEFAULT_MAX_BATCH_SIZE = 1000;
export const DEFAULT_MAX_BATCH_DELAY_MS = 100;

interface IdState {
  /** Highest sequenceNr assigned, including appends not yet committed (with sharedWriters: a guess). */
  assigned: number;
  /** Highest sequenceNr known committed (with sharedWriters: as last seen by this process). */
  durable: number;
  /** sharedWriters only: a commit of the id failed, so `durable` is read from storage before the next one. */
  stale?: boolean;
  /** The latest append issued for this id (wait for it with `.then(settle, settle)`: it may reject). */
  lastWrite: Promise<void> | undefined;
}

/** A queued append. With sharedWriters its events are numbered again when its commit starts. */
interface QueuedAppend extends JournalWrite {
  events: StoredEvent[];
  /** sharedWriters: the highest storage must hold before this write; undefined = whatever it holds. */
  readonly expected: number | undefined;
}

type Lifecycle = 'open' | 'closing' | 'closed';

const settle = (): void => undefined;

/**
 * The rules every Cairn journal follows, written once: argument validation, the open/closing/closed
 * lifecycle, per-id ordering, sequence number assignment, expectedSequenceNr, serialization, group commit,
 * and turning storage failures into typed errors. A backend extends it and implements only the raw
 * storage calls (the `_`-prefixed methods), each called with already validated arguments.
 *
 * Backend obligations:
 * - `_write` makes every write in the call durable (per its sync setting) before resolving; each write
 *   is atomic, also across a crash. If it rejects, none of the writes may become visible later (undo a
 *   partial write before rejecting), or the journal state must be re-readable by `_highestSequenceNr`.
 *   A write that conflicts with the stored highest (another process appended to its id) rejects the call
 *   with SequenceConflictError naming that id and storing nothing: the core fails that id's appends and
 *   commits the others again.
 * - `_read` yields pages of events in ascending order, in bounded memory, skipping truncated ones; it
 *   throws JournalCorruptedError (with file/offset or key) for a record that fails its checksum.
 * - `_highestSequenceNr` is the highest ever committed, unaffected by truncation.
 * - Tags: `_write` stores each event's `tags` (undefined for none) with it, atomically with the event;
 *   `_read` and `_readOrdered` return them. Data written before the backend stored tags reads as none.
 *
 * Queries (a backend declaring `capabilities.query`): the core implements EventQuery once (offsets,
 * validation, current and live queries, waking, abort and close) over three hooks, `_journalId`,
 * `_headPosition` and `_readOrdered`, plus `_watchForeignCommits` for storage other processes write.
 * Their contract:
 * - Every event gets a **position** when it is committed, inside the commit (the same write transaction,
 *   frame or lock that makes it durable): an integer >= 1, unique in the journal, never reused, also after
 *   truncation, compaction or a crash. Positions grow in commit order: a commit that becomes visible
 *   after another has higher positions, a write's (an appendBatch's) events get consecutive positions in
 *   sequenceNr order. Gaps are allowed (a failed commit may burn numbers); going back is not. A
 *   position is a number, or a bigint for a backend whose order is a pair packed into one integer
 *   (PostgreSQL: transaction id, then row position; the core only compares them and puts them in offsets).
 *   Positions need not be assigned in commit order if the head never passes an event that is not yet
 *   visible, and no event ever becomes visible at or below a head already reported.
 * - `_headPosition()` is the position of the last committed event (0 when nothing was ever committed),
 *   such that **every** event at or below it is committed, durable (per the sync setting) and readable by
 *   `_readOrdered`. With several commits in flight, it must not pass one that is not done yet: that is
 *   what makes "never skips" hold. Truncation does not lower it.
 * - `_readOrdered(after, upTo, filter)` yields, in ascending position, every surviving (not truncated)
 *   event with `after < position <= upTo` matching `filter`, as pages of PositionedEvent (id, position,
 *   sequenceNr, timestamp, serializerId, payload, tags), in bounded memory: it reads a page when pulled,
 *   never ahead; a consumer that stops pulling costs at most the page it holds. A truncation that happens
 *   meanwhile may or may not hide events of the page being read, but never events of earlier pages.
 *   The core only asks for `upTo <= _headPosition()` it read before. Corruption throws
 *   JournalCorruptedError naming file/offset or key, as `_read`.
 * - `_journalId()` is a random id (`newJournalId()`) created with the storage and kept with it, the same
 *   after reopen; offsets carry it, so an offset of another journal is refused.
 * - Waking: the core wakes its live queries after every commit of this process by itself. A backend that
 *   other processes may write implements `_watchForeignCommits(onCommit)`: it starts noticing commits made
 *   by others (one poll timer or change notification for the whole journal, not one per query) and calls
 *   `onCommit()` once its `_headPosition` and `_readOrdered` see them; it returns the function that stops
 *   watching. The core runs one watcher while at least one live query is open, and stops it at close.
 */
export abstract class AbstractMessageJournal<M = unknown>
  implements
    BatchedMessageJournal<M>,
    EventQuery<M>,
    ImportableJournal<M>,
    MeteredJournal<M>,
    DeletableJournal<M>
{
  readonly maxBatchSize: number;
  readonly maxBatchDelayMs: number;
  abstract readonly capabilities: JournalCapabilities;
  /** Opened with `readOnly: true`: every write rejects with ReadOnlyError (see JournalOptions.readOnly). */
  readonly readOnly: boolean;
  protected readonly serializer: Serializer;
  /** This store's serializers for decoding (its own, then the built-ins): nothing process-wide. */
  private readonly serializers: SerializerRegistry;
  protected readonly reporter: Reporter;

  private lifecycle: Lifecycle = 'open';
  private closing: Promise<void> | undefined;
  private readonly ids = new Map<string, IdState>();
  private readonly loading = new Map<string, Promise<IdState>>();
  private groupCommit: GroupCommit<IdState, QueuedAppend> | undefined;
  private activePulls = 0;
  private pullsIdle: (() => void) | undefined;
  private readonly counts = {
    eventsAppended: 0,
    commits: 0,
    commitFailures: 0,
    serializationRejections: 0,
    sequenceConflicts: 0,
    eventsRead: 0,
    corruptionsDetected: 0,
  };
  private readonly commitLatency = new LatencyRecorder();
  /** The bounds on pending commits (maxPendingEvents, maxPendingBytes, onBackpressure). */
  private readonly backpressure: Backpressure;
  /** The cap on disk use (JournalOptions.maxDiskBytes); undefined: none. */
  readonly maxDiskBytes: number | undefined;
  /** Disk bytes in use as last measured (refreshed after every commit, and before refusing an append). */
  private diskBytes: number | undefined;
  /** The last group commit's outcome, for health(). */
  private readonly lastCommit = new LastWrite();
  /** Wakes live queries at every commit. */
  private readonly commits = new CommitSignal(
    this._watchForeignCommits ? (onCommit) => this._watchForeignCommits!(onCommit) : undefined,
  );
  private offsetCodec: OffsetCodec | undefined;

  protected constructor(options: JournalOptions = {}) {
    checkOptionalObject(options, 'options');
    this.maxBatchSize = options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE;
    this.maxBatchDelayMs = options.maxBatchDelayMs ?? DEFAULT_MAX_BATCH_DELAY_MS;
    checkSequenceNr(this.maxBatchSize, 'maxBatchSize');
    checkCount(this.maxBatchDelayMs, 'maxBatchDelayMs');
    this.serializer = resolveSerializer(options.serializer);
    this.serializers = serializersFor(this.serializer);
    this.reporter = options.reporter ?? defaultReporter;
    if (options.readOnly !== undefined && typeof options.readOnly !== 'boolean')
      throw new TypeError(`options.readOnly must be a boolean, got ${typeof options.readOnly}`);
    this.readOnly = options.readOnly ?? false;
    this.location = typeof options.path === 'string' ? options.path : 'journal';
    const maxPendingEvents = options.maxPendingEvents ?? DEFAULT_MAX_PENDING_EVENTS;
    const maxPendingBytes = options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
    checkSequenceNr(maxPendingEvents, 'maxPendingEvents');
    checkSequenceNr(maxPendingBytes, 'maxPendingBytes');
    const mode = options.onBackpressure ?? 'wait';
    if (mode !== 'wait' && mode !== 'reject') {
      throw new TypeError(`options.onBackpressure must be 'wait' or 'reject', got ${JSON.stringify(mode)}`);
    }
    if (options.maxDiskBytes !== undefined) {
      checkSequenceNr(options.maxDiskBytes, 'maxDiskBytes');
      if (!this._diskBytesUsed) {
        throw new TypeError(
          `${new.target.name} does not measure its disk use: maxDiskBytes is not supported`,
        );
      }
    }
    this.maxDiskBytes = options.maxDiskBytes;
    this.backpressure = new Backpressure(maxPendingEvents, maxPendingBytes, mode, () => ({
      events: this.groupCommit?.pendingSize ?? 0,
      bytes: this.groupCommit?.pendingBytes ?? 0,
    }));
  }

  private readonly location: string;

  /**
   * Throws ReadOnlyError when the journal was opened read-only. The core calls it before every write it
   * owns; a backend calls it first in its own writing tools (a repair, a compaction).
   */
  protected refuseWhenReadOnly(operation: string): void {
    if (this.readOnly) throw new ReadOnlyError(this.location, `${operation} refused, nothing written`);
  }

  /** The read-only refusal, then the backend's writeGate. */
  private gate(persistenceId: string, operation: string): Promise<void> | undefined {
    this.refuseWhenReadOnly(operation);
    return this.writeGate(persistenceId, operation);
  }

  // ---- raw storage, implemented by backends ----

  /** Highest sequenceNr ever committed for the id (0 if none), not lowered by truncation. */
  protected abstract _highestSequenceNr(persistenceId: string): Promise<number>;
  /**
   * Commits the writes (from any ids); durable before it resolves; each write atomic. With the
   * `sharedWriters` capability it resolves to the ids it did not store (see WriteConflicts).
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: backends without sharedWriters resolve to nothing
  protected abstract _write(writes: readonly JournalWrite[]): Promise<void | WriteConflicts>;
  /** Pages of events with from <= sequenceNr <= to, ascending, at most `max` in all; truncated ones skipped. */
  protected abstract _read(
    persistenceId: string,
    fromSequenceNr: number,
    toSequenceNr: number,
    max: number,
  ): AsyncIterable<readonly StoredEvent[]>;
  /**
   * Durably hides every event below sequenceNr (never more than highest + 1); `highest` is the id's current
   * highest sequenceNr (>= 1). Later appends (numbered above `highest`) stay visible.
   */
  protected abstract _truncateBefore(
    persistenceId: string,
    sequenceNr: number,
    highest: number,
  ): Promise<void>;
  protected abstract _persistenceIds(): AsyncIterable<string>;
  /** Releases everything; called once, after pending writes settled and no read is mid-pull. */
  protected abstract _close(): Promise<void>;
  /**
   * Optional: the id's truncation low-water mark (the lowest sequenceNr a read may still return; 1 when
   * nothing was truncated). With it, the core tells a sequenceNr that truncation removed from one that is
   * missing (a lost page, a damaged index): a missing one rejects the read with JournalCorruptedError
   * instead of being skipped silently.
   */
  protected _lowWaterMark?(persistenceId: string): Promise<number>;
  /**
   * Optional: for an id that has never had events (highest 0), durably records `highest` as its highest
   * sequenceNr with everything up to it truncated (low-water mark `highest + 1`), so the next write is
   * numbered `highest + 1`. What importEntries and importTruncated need to copy an id whose first events
   * were truncated; without it they refuse such ids with a RangeError.
   */
  protected _startAfter?(persistenceId: string, highest: number): Promise<void>;
  /**
   * Queries (capabilities.query): the journal's id, created with its storage and kept with it (see the
   * class comment). Called when a query or headOffset() first needs it, after open.
   */
  protected _journalId?(): string;
  /** Queries: the position of the last committed event, every position below it committed too; 0 when none. */
  protected _headPosition?(): Promise<Position>;
  /**
   * Queries: pages of the surviving events with `after < position <= upTo` that match `filter`, ascending
   * position, a page read per pull (see the class comment).
   */
  protected _readOrdered?(
    after: Position,
    upTo: Position,
    filter: OrderedFilter,
  ): AsyncIterable<readonly PositionedEvent[]>;
  /**
   * Queries, for storage that other processes write: start noticing their commits, call `onCommit` after
   * each one is visible to `_headPosition`/`_readOrdered` (at most ~100 ms late), and return a function
   * that stops. One watcher per journal; the core starts it with the first live query and stops it with
   * the last one or at close.
   */
  protected _watchForeignCommits?(onCommit: () => void): () => void;
  /**
   * Optional: the bytes of disk the journal's data uses now, as the backend counts it (see
   * JournalOptions.maxDiskBytes), cheap enough to call after every commit. With it, maxDiskBytes is
   * available and metrics() reports `diskBytesUsed`.
   */
  protected _diskBytesUsed?(): number;
  /**
   * Optional: the backend's own health checks (its lock held, say), added to the core's in health().
   * Synchronous and cheap: health() may be called by every probe and scrape.
   */
  protected _healthChecks?(): HealthCheck[];
  /** Where a record lives, for corruption reports. Backends with files override this. */
  protected _locate(
    persistenceId: string,
    sequenceNr: number,
  ): Pick<CorruptionLocation, 'file' | 'offset' | 'key'> {
    return { key: `${persistenceId}#${sequenceNr}` };
  }

  // ---- the public contract ----

  append(persistenceId: string, message: M, options?: AppendOptions<M>): Promise<number> {
    // The hot path of an event-sourced application (one event per command): no intermediate arrays or
    // async layers beyond the commit's own promise. Every error still comes as a rejection.
    try {
      this.checkOpen();
      checkPersistenceId(persistenceId);
      checkOptionalObject(options, 'options');
      const expected = options?.expectedSequenceNr;
      if (expected !== undefined) checkCount(expected, 'expectedSequenceNr');
      const tags = options?.tags === undefined ? undefined : tagsForMessages(options.tags, [message]);
      const payload = this.encodeOne(persistenceId, message, 'the message');
      return this.appendPayloads(persistenceId, [payload], tags, expected, 'append');
    } catch (e) {
      return Promise.reject(e);
    }
  }

  appendBatch(persistenceId: string, messages: readonly M[], options?: AppendOptions<M>): Promise<number[]> {
    try {
      this.checkOpen();
      checkPersistenceId(persistenceId);
      if (!Array.isArray(messages)) throw new TypeError('messages must be an array');
      if (messages.length === 0) throw new RangeError('appendBatch needs at least one message');
      checkOptionalObject(options, 'options');
      const expected = options?.expectedSequenceNr;
      if (expected !== undefined) checkCount(expected, 'expectedSequenceNr');
      const tags = options?.tags === undefined ? undefined : tagsForMessages(options.tags, messages);
      const payloads = this.encodeAll(persistenceId, messages);
      return this.appendPayloads(persistenceId, payloads, tags, expected, 'appendBatch').then((first) =>
        payloads.map((_, i) => first + i),
      );
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Writes entries that already have their sequence numbers and timestamps: for tools that copy or restore
   * a journal (`cairn copy`), not for applications, whose numbers the journal assigns. The entries must all
   * be of `persistenceId`, consecutive, and continue the id's highest exactly (the first one is highest + 1),
   * with one exception: an id that has never had events may start above 1 (a copy of an id whose first
   * events were truncated), and the numbers below are then recorded as truncated. Anything else is a
   * RangeError and writes nothing. Atomic and durable like appendBatch, and ordered with the id's other
   * appends; nothing else should write the id meanwhile. Entries keep their tags (checked like an
   * append's); they get new positions in this journal's global order, after everything committed before.
   */
  async importEntries(
    persistenceId: string,
    entries: readonly (Omit<JournalEntry<M>, 'tags'> & { readonly tags?: readonly string[] })[],
  ): Promise<void> {
    this.checkOpen();
    checkPersistenceId(persistenceId);
    if (!Array.isArray(entries)) throw new TypeError('entries must be an array');
    if (entries.length === 0) throw new RangeError('importEntries needs at least one entry');
    entries.forEach((e, i) => {
      if (e?.persistenceId !== persistenceId)
        throw new RangeError(`entry ${i} belongs to "${e?.persistenceId}"`);
      checkSequenceNr(e.sequenceNr, `entries[${i}].sequenceNr`);
      checkCount(e.timestamp, `entries[${i}].timestamp`);
      if (i > 0 && e.sequenceNr !== entries[i - 1]!.sequenceNr + 1) {
        throw new RangeError(
          `entries must be consecutive: ${entries[i - 1]!.sequenceNr} is followed by ${e.sequenceNr}`,
        );
      }
    });
    const tags = entries.map((e, i) => (e.tags === undefined ? NO_TAGS : checkTags(e.tags, `entries[${i}]`)));
    const payloads = this.encodeAll(
      persistenceId,
      entries.map((e) => e.message),
    );
    await this.gate(persistenceId, 'importEntries');
    const state = this.ids.get(persistenceId) ?? (await this.loadState(persistenceId));
    if (this.lifecycle === 'closed') throw new JournalClosedError('journal');
    if (entries[0]!.sequenceNr > 1 && state.assigned === 0) {
      await this.startAfter(persistenceId, state, entries[0]!.sequenceNr - 1, 'importEntries');
    }
    if (entries[0]!.sequenceNr !== state.assigned + 1) {
      throw new RangeError(
        `imported entries of "${persistenceId}" must start at ${state.assigned + 1} (its highest + 1), not ${entries[0]!.sequenceNr}`,
      );
    }
    const events: StoredEvent[] = entries.map((e, i) => ({
      sequenceNr: e.sequenceNr,
      timestamp: e.timestamp,
      serializerId: this.serializer.id,
      payload: payloads[i]!,
      tags: tags[i]!.length > 0 ? tags[i] : undefined,
    }));
    const shared = this.capabilities.sharedWriters === true;
    // With sharedWriters, storage checks that nothing was written to the id meanwhile.
    const write: QueuedAppend = {
      persistenceId,
      events,
      expected: shared ? entries[0]!.sequenceNr - 1 : undefined,
    };
    const bytes = payloadBytes(payloads);
    if (this.maxDiskBytes !== undefined) this.checkDiskLimit(persistenceId, bytes);
    if (!this.backpressure.hasRoom(events.length, bytes)) {
      await this.waitForRoom(state, persistenceId, events.length, bytes, () =>
        this.enqueue(state, write, bytes),
      );
      return;
    }
    await this.enqueue(state, write, bytes);
  }

  /**
   * Writes entries of several ids in the order given, each keeping its sequenceNr, timestamp and tags: for
   * tools that copy a journal in its global order (`cairn copy`), so that queries on this journal deliver
   * the entries in the order they came in. Per id, as for importEntries: consecutive, continuing the id's
   * highest exactly (an id that never had events may start above 1, the numbers below recorded as
   * truncated). At most `maxBatchSize` entries (more is a RangeError). Waits for the commits in flight,
   * then commits the entries together in one commit, so they get positions in the global order in the
   * order given, after everything committed before. Any invalid entry is a RangeError or TypeError and
   * writes nothing; nothing else should write these ids meanwhile.
   */
  async importInOrder(
    entries: readonly (Omit<JournalEntry<M>, 'tags'> & { readonly tags?: readonly string[] })[],
  ): Promise<void> {
    this.checkOpen();
    if (!Array.isArray(entries)) throw new TypeError('entries must be an array');
    if (entries.length === 0) throw new RangeError('importInOrder needs at least one entry');
    if (entries.length > this.maxBatchSize) {
      throw new RangeError(
        `importInOrder takes at most maxBatchSize (${this.maxBatchSize}) entries, got ${entries.length}`,
      );
    }
    // Runs of consecutive entries of one id, in order; per id, each run continues the one before.
    const runs: { id: string; entries: (typeof entries)[number][] }[] = [];
    const lastOf = new Map<string, number>();
    const firstOf = new Map<string, number>();
    entries.forEach((e, i) => {
      checkPersistenceId(e?.persistenceId);
      checkSequenceNr(e.sequenceNr, `entries[${i}].sequenceNr`);
      checkCount(e.timestamp, `entries[${i}].timestamp`);
      const last = lastOf.get(e.persistenceId);
      if (last !== undefined && e.sequenceNr !== last + 1) {
        throw new RangeError(
          `entries of "${e.persistenceId}" must be consecutive: ${last} is followed by ${e.sequenceNr}`,
        );
      }
      if (last === undefined) firstOf.set(e.persistenceId, e.sequenceNr);
      lastOf.set(e.persistenceId, e.sequenceNr);
      const run = runs[runs.length - 1];
      if (run !== undefined && run.id === e.persistenceId) run.entries.push(e);
      else runs.push({ id: e.persistenceId, entries: [e] });
    });
    const tags = entries.map((e, i) => (e.tags === undefined ? NO_TAGS : checkTags(e.tags, `entries[${i}]`)));
    const payloads = runs.map((run) =>
      this.encodeAll(
        run.id,
        run.entries.map((e) => e.message),
      ),
    );
    for (const id of firstOf.keys()) await this.gate(id, 'importInOrder');
    const states = new Map<string, IdState>();
    for (const [id, first] of firstOf) {
      const state = this.ids.get(id) ?? (await this.loadState(id));
      if (this.lifecycle === 'closed') throw new JournalClosedError('journal');
      if (first !== state.assigned + 1 && !(first > 1 && state.assigned === 0)) {
        throw new RangeError(
          `imported entries of "${id}" must start at ${state.assigned + 1} (its highest + 1), not ${first}`,
        );
      }
      states.set(id, state);
    }
    // Every id checked: only now is anything recorded (the truncated numbers of ids that start above 1).
    for (const [id, first] of firstOf) {
      const state = states.get(id)!;
      if (first > 1 && state.assigned === 0) await this.startAfter(id, state, first - 1, 'importInOrder');
    }
    // Alone in its commit: what is in flight commits first, and nothing is pipelined beside this one.
    await this.groupCommit?.drain();
    this.checkOpen();
    for (const [id, first] of firstOf) {
      if (this.ids.get(id) !== states.get(id) || states.get(id)!.assigned !== first - 1) {
        throw new RangeError(`"${id}" was written meanwhile: importInOrder wrote nothing`);
      }
    }
    const shared = this.capabilities.sharedWriters === true;
    let at = 0;
    const writes = runs.map((run, r) => {
      const events: StoredEvent[] = run.entries.map((e, k) => ({
        sequenceNr: e.sequenceNr,
        timestamp: e.timestamp,
        serializerId: this.serializer.id,
        payload: payloads[r]![k]!,
        tags: tags[at + k]!.length > 0 ? tags[at + k] : undefined,
      }));
      at += run.entries.length;
      const write: QueuedAppend = {
        persistenceId: run.id,
        events,
        expected: shared ? run.entries[0]!.sequenceNr - 1 : undefined,
      };
      const bytes = payloadBytes(payloads[r]!);
      if (this.maxDiskBytes !== undefined) this.checkDiskLimit(run.id, bytes);
      return { state: states.get(run.id)!, write, bytes };
    });
    // Queued in one go, in order, with nothing in flight: one commit takes them all (they fit in one).
    await Promise.all(writes.map(({ state, write, bytes }) => this.enqueue(state, write, bytes)));
  }

  /**
   * Records that an id which has never had events had them up to `highest`, all truncated: afterwards
   * highestSequenceNr answers `highest`, reads find nothing, and the next append is numbered
   * `highest + 1`. For tools that copy a journal (an id whose events were all deleted after a snapshot
   * keeps its numbering). Resolves at once when the id's highest is already `highest`; a RangeError,
   * changing nothing, when the id has events or a higher highest, or the backend cannot record it.
   */
  async importTruncated(persistenceId: string, highest: number): Promise<void> {
    this.checkOpen();
    checkPersistenceId(persistenceId);
    checkSequenceNr(highest, 'highest');
    await this.gate(persistenceId, 'importTruncated');
    await this.writesIssued(persistenceId);
    const state = this.ids.get(persistenceId) ?? (await this.loadState(persistenceId));
    if (this.lifecycle === 'closed') throw new JournalClosedError('journal');
    if (state.assigned === highest) return;
    if (state.assigned !== 0) {
      throw new RangeError(
        `"${persistenceId}" already has highestSequenceNr ${state.assigned}: importTruncated(${highest}) is only for an id that never had events`,
      );
    }
    if (!(await this.startAfter(persistenceId, state, highest, 'importTruncated'))) {
      throw new RangeError(
        `"${persistenceId}" was written meanwhile: importTruncated(${highest}) recorded nothing`,
      );
    }
  }

  /**
   * Makes an id that never had events continue after `highest` (see _startAfter). False, recording
   * nothing, when the id was numbered meanwhile.
   */
  private async startAfter(
    persistenceId: string,
    state: IdState,
    highest: number,
    operation: string,
  ): Promise<boolean> {
    if (!this._startAfter) {
      throw new RangeError(
        `this journal cannot start "${persistenceId}" above sequenceNr 1 (${operation} of an id whose first events were truncated)`,
      );
    }
    if (state.assigned !== 0 || state.durable !== 0) return false;
    // Claimed at once: an append issued meanwhile is numbered after it (and written after it: backends
    // apply writes in the order they are issued).
    state.assigned = highest;
    try {
      await this.storage(() => this._startAfter!(persistenceId, highest), operation);
    } catch (e) {
      if (this.ids.get(persistenceId) === state) this.ids.delete(persistenceId);
      throw e;
    }
    state.durable = Math.max(state.durable, highest);
    return true;
  }

  /**
   * Called for every append, appendBatch, importEntries, importTruncated and truncateBefore after its
   * arguments were validated and its messages serialized (so they are captured as they were at the call),
   * before it is numbered, and after the core's own read-only refusal. Throw to refuse the write; return a
   * promise to make it wait (a repair of the id in progress). The default lets every write through at once.
   */
  protected writeGate(_persistenceId: string, _operation: string): Promise<void> | undefined {
    return undefined;
  }

  /** Numbers serialized messages and queues them; resolves with the first sequenceNr once committed. */
  private appendPayloads(
    persistenceId: string,
    payloads: readonly Uint8Array[],
    tags: readonly (readonly string[])[] | undefined,
    expected: number | undefined,
    operation: string,
    serializerId = this.serializer.id,
  ): Promise<number> {
    const gate = this.gate(persistenceId, operation);
    const numbered = (state: IdState): Promise<number> => {
      if (this.lifecycle === 'closed') throw new JournalClosedError('journal');
      return this.appendNumbered(state, persistenceId, payloads, tags, expected, serializerId);
    };
    if (gate === undefined) {
      const state = this.ids.get(persistenceId);
      if (state !== undefined) {
        return this.appendNumbered(state, persistenceId, payloads, tags, expected, serializerId);
      }
      // Started now: close() waits for state loads before it drains, so an append issued before close()
      // still lands.
      return this.loadState(persistenceId).then(numbered);
    }
    return gate.then(() => {
      const state = this.ids.get(persistenceId);
      return state !== undefined ? numbered(state) : this.loadState(persistenceId).then(numbered);
    });
  }

  private appendNumbered(
    state: IdState,
    persistenceId: string,
    payloads: readonly Uint8Array[],
    tags: readonly (readonly string[])[] | undefined,
    expected: number | undefined,
    serializerId: number,
    admitted = false,
  ): Promise<number> {
    const bytes = payloadBytes(payloads);
    if (this.maxDiskBytes !== undefined) this.checkDiskLimit(persistenceId, bytes);
    if (!admitted && !this.backpressure.hasRoom(payloads.length, bytes)) {
      return this.waitForRoom(state, persistenceId, payloads.length, bytes, () =>
        this.appendNumbered(state, persistenceId, payloads, tags, expected, serializerId, true),
      );
    }
    const shared = this.capabilities.sharedWriters === true;
    if (!shared && expected !== undefined && expected !== state.assigned) {
      this.counts.sequenceConflicts++;
      throw new SequenceConflictError(persistenceId, expected, state.assigned);
    }
    const timestamp = Date.now();
    // With sharedWriters storage judges the expectation, and these numbers are provisional.
    const first = (shared && expected !== undefined ? expected : state.assigned) + 1;
    const events: StoredEvent[] = payloads.map((payload, i) =>
      tags === undefined || tags[i]!.length === 0
        ? { sequenceNr: first + i, timestamp, serializerId, payload }
        : { sequenceNr: first + i, timestamp, serializerId, payload, tags: tags[i] },
    );
    const write: QueuedAppend = { persistenceId, events, expected: shared ? expected : undefined };
    return this.enqueue(state, write, bytes).then(() => write.events[0]!.sequenceNr);
  }

  /**
   * Refuses (DiskLimitError) a write of `bytes` that would take the disk in use, with what is pending,
   * past maxDiskBytes. A refusal measures again first: space freed since the last commit (a compaction)
   * counts.
   */
  private checkDiskLimit(persistenceId: string, bytes: number): void {
    const cap = this.maxDiskBytes!;
    const pending = this.groupCommit?.pendingBytes ?? 0;
    const over = (used: number) => used + pending + bytes > cap;
    if (this.diskBytes !== undefined && !over(this.diskBytes)) return;
    const used = this.measureDisk();
    if (over(used)) throw new DiskLimitError(persistenceId, used, cap);
  }

  private measureDisk(): number {
    this.diskBytes = this._diskBytesUsed!();
    return this.diskBytes;
  }

  /**
   * An append that does not fit under maxPendingEvents/maxPendingBytes: refused with BackpressureError
   * (onBackpressure 'reject'), or run by `admit` once earlier commits made room, in issue order. It is the
   * id's latest write meanwhile, so reads and highestSequenceNr issued after it wait for it.
   */
  private waitForRoom<T>(
    state: IdState,
    persistenceId: string,
    events: number,
    bytes: number,
    admit: () => Promise<T>,
  ): Promise<T> {
    if (this.backpressure.mode === 'reject') {
      this.backpressure.rejections++;
      throw new BackpressureError(persistenceId, this.backpressure.describe(events, bytes));
    }
    const admitted = new Promise<T>((resolve, reject) => {
      this.backpressure.wait(events, bytes, () => {
        try {
          if (this.lifecycle === 'closed') throw new JournalClosedError('journal');
          admit().then(resolve, reject);
        } catch (e) {
          reject(e);
        }
      });
    });
    state.lastWrite = admitted.then(settle, settle);
    return admitted;
  }

  /** Numbers the id's events as taken and queues them for the next group commit; settles with that commit. */
  private enqueue(state: IdState, write: QueuedAppend, bytes: number): Promise<void> {
    state.assigned = write.events[write.events.length - 1]!.sequenceNr;
    const committed = this.commitQueue().enqueue(state, write, write.events.length, bytes);
    // Kept as is (its callers handle its rejection); writesIssued waits on it without failing.
    state.lastWrite = committed;
    return committed;
  }

  readFrom(
    persistenceId: string,
    fromSequenceNr: number,
    options: WithDeletions<ReadOptions>,
  ): AsyncIterable<JournalEntry<M> | DeletionMarker>;
  readFrom(
    persistenceId: string,
    fromSequenceNr: number,
    options?: ReadOptions,
  ): AsyncIterable<JournalEntry<M>>;
  readFrom(
    persistenceId: string,
    fromSequenceNr: number,
    options?: ReadOptions,
  ): AsyncIterable<JournalEntry<M> | DeletionMarker> {
    return {
      [Symbol.asyncIterator]: () => new IdReader(this.readHost, persistenceId, fromSequenceNr, options),
    };
  }

  async highestSequenceNr(persistenceId: string): Promise<number> {
    this.checkOpen();
    checkPersistenceId(persistenceId);
    await this.writesIssued(persistenceId);
    if (this.capabilities.sharedWriters) {
      // Another process may have written the id: storage is the only authority.
      const highest = await this.storage(() => this._highestSequenceNr(persistenceId), 'highestSequenceNr');
      const state = this.ids.get(persistenceId);
      if (state && !state.stale && highest > state.durable) {
        state.durable = highest;
        state.assigned = Math.max(state.assigned, highest);
      }
      return highest;
    }
    // A failed commit forgets the id's state, so then this asks storage again.
    return (this.ids.get(persistenceId) ?? (await this.loadState(persistenceId))).durable;
  }

  async truncateBefore(persistenceId: string, sequenceNr: number): Promise<void> {
    this.checkOpen();
    checkPersistenceId(persistenceId);
    checkSequenceNr(sequenceNr);
    await this.gate(persistenceId, 'truncateBefore');
    const highest = await this.highestSequenceNr(persistenceId);
    this.checkOpen();
    // Clamped so an append issued later (numbered above `highest`) is never hidden by this call.
    const before = Math.min(sequenceNr, highest + 1);
    if (highest === 0) return;
    await this.storage(() => this._truncateBefore(persistenceId, before, highest), 'truncateBefore');
  }

  /**
   * DeletableJournal (on every journal that declares `deletion`): appends a deletion marker after the id's
   * highest, carrying every tag the id's events carried, then truncates everything before it. A crash
   * between the two leaves the marker with the old events still there (readFrom and recovery start after
   * the marker all the same); running the deletion again finishes it. A write by another process in
   * between (sharedWriters) is a conflict: the deletion starts over, at most three times.
   */
  async deletePersistenceId(persistenceId: string): Promise<void> {
    this.checkOpen();
    checkPersistenceId(persistenceId);
    if (!this.capabilities.deletion) {
      throw new TypeError(
        `${this.constructor.name} does not implement deletion (capabilities.deletion is not set); ask canDelete(journal) first`,
      );
    }
    this.refuseWhenReadOnly('deletePersistenceId');
    for (let attempt = 1; ; attempt++) {
      const highest = await this.highestSequenceNr(persistenceId);
      if (highest === 0) return;
      const survivors = await this.survivingTags(persistenceId, highest);
      if (survivors.markerAt === highest) {
        // Deleted already and nothing appended since: finish a truncation a crash may have cut short.
        if (survivors.before) await this.truncateBefore(persistenceId, highest);
        return;
      }
      const tags = [...survivors.tags];
      if (tags.length > MAX_TAGS_PER_EVENT) {
        throw new RangeError(
          `"${persistenceId}" cannot be deleted: its events carry ${tags.length} distinct tags and a deletion marker holds at most ${MAX_TAGS_PER_EVENT}`,
        );
      }
      let marker: number;
      try {
        marker = await this.appendPayloads(
          persistenceId,
          [DELETION_MARKER_PAYLOAD],
          tags.length === 0 ? undefined : [tags],
          highest,
          'deletePersistenceId',
          DELETION_MARKER_SERIALIZER_ID,
        );
      } catch (e) {
        if (attempt < 3 && isPersistenceError(e, 'ERR_SEQUENCE_CONFLICT')) continue;
        throw e;
      }
      await this.truncateBefore(persistenceId, marker);
      return;
    }
  }

  /**
   * The distinct tags of an id's surviving records, where its last deletion marker is (if it is the
   * highest) and whether records below that marker survive. Reads the stored records without decoding.
   */
  private async survivingTags(
    persistenceId: string,
    highest: number,
  ): Promise<{ tags: Set<string>; markerAt: number | undefined; before: boolean }> {
    const tags = new Set<string>();
    let markerAt: number | undefined;
    let before = false;
    const pages = this._read(persistenceId, 1, highest, Number.MAX_SAFE_INTEGER)[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await this.pull(pages);
        if (next.done) break;
        for (const stored of next.value) {
          if (stored.sequenceNr === highest && isDeletionMarker(stored)) markerAt = highest;
          else before = true;
          for (const tag of stored.tags ?? NO_TAGS) tags.add(tag);
        }
      }
    } finally {
      await pages.return?.();
    }
    return { tags, markerAt, before };
  }

  async *persistenceIds(): AsyncGenerator<string, void, undefined> {
    this.checkOpen();
    await this.flush();
    const ids = this._persistenceIds()[Symbol.asyncIterator]();
    try {
      while (true) {
        const next = await this.pull(ids);
        if (next.done) return;
        yield next.value;
      }
    } finally {
      await ids.return?.();
    }
  }

  // ---- queries (EventQuery; see the class comment for the backend's part) ----

  allEvents(options: WithDeletions<QueryOptions>): AsyncIterable<EventEnvelope<M> | DeletionEnvelope>;
  allEvents(options?: QueryOptions): AsyncIterable<EventEnvelope<M>>;
  allEvents(options?: QueryOptions): AsyncIterable<QueryItem<M>> {
    return this.query(() => {
      checkOptionalObject(options, 'options');
      return [{ kind: 'all' }, this.queryParameters(options), undefined];
    });
  }

  eventsByTag(
    tag: string,
    options: WithDeletions<QueryOptions>,
  ): AsyncIterable<EventEnvelope<M> | DeletionEnvelope>;
  eventsByTag(tag: string, options?: QueryOptions): AsyncIterable<EventEnvelope<M>>;
  eventsByTag(tag: string, options?: QueryOptions): AsyncIterable<QueryItem<M>> {
    return this.query(() => {
      checkTag(tag);
      checkOptionalObject(options, 'options');
      return [{ kind: 'tag', tag }, this.queryParameters(options), undefined];
    });
  }

  eventsByPersistenceId(
    persistenceId: string,
    options: WithDeletions<EventsByIdOptions>,
  ): AsyncIterable<EventEnvelope<M> | DeletionEnvelope>;
  eventsByPersistenceId(persistenceId: string, options?: EventsByIdOptions): AsyncIterable<EventEnvelope<M>>;
  eventsByPersistenceId(persistenceId: string, options?: EventsByIdOptions): AsyncIterable<QueryItem<M>> {
    return this.query(() => {
      checkPersistenceId(persistenceId);
      checkOptionalObject(options, 'options');
      const fromSequenceNr = options?.fromSequenceNr ?? 1;
      const toSequenceNr = options?.toSequenceNr ?? Number.MAX_SAFE_INTEGER;
      checkSequenceNr(fromSequenceNr, 'fromSequenceNr');
      checkSequenceNr(toSequenceNr, 'toSequenceNr');
      const parameters = this.queryParameters(options);
      if (toSequenceNr < fromSequenceNr) return [undefined, { ...parameters, live: false }, undefined];
      const bounded = toSequenceNr !== Number.MAX_SAFE_INTEGER;
      return [
        { kind: 'persistenceId', persistenceId, fromSequenceNr, toSequenceNr },
        bounded ? { ...parameters, last: (e) => e.sequenceNr >= toSequenceNr } : parameters,
        // A bounded live query ends once every event up to its bound was committed and read (the
        // bound's own event may have been truncated, so delivering it is not the only way to the end).
        bounded && parameters.live
          ? async () => (await this.highestSequenceNr(persistenceId)) >= toSequenceNr
          : undefined,
      ];
    });
  }

  async headOffset(): Promise<string | undefined> {
    this.checkOpen();
    this.checkQueries();
    const head = await this.counted(() => this._headPosition!(), 'headOffset');
    return head === 0 || head === 0n ? undefined : this.offsets().encode(head);
  }

  /**
   * An iterable whose iterators run one query. `prepare` validates the arguments (its error rejects the
   * first next(), as readFrom's do) and says the filter (undefined: an empty range), the parameters and,
   * for bounded live queries, how to tell the end.
   */
  private query(
    prepare: () => [OrderedFilter | undefined, QueryParameters, (() => Promise<boolean>) | undefined],
  ): AsyncIterable<QueryItem<M>> {
    return {
      [Symbol.asyncIterator]: () => {
        let prepared: ReturnType<typeof prepare> | undefined;
        let invalid: unknown;
        try {
          this.checkOpen();
          this.checkQueries();
          prepared = prepare();
        } catch (e) {
          invalid = e;
        }
        const [filter, parameters, reachedEnd] = prepared ?? [undefined, undefined, undefined];
        const source: OrderedSource<M> = {
          commits: this.commits,
          checkOpen: () => this.checkOpen(),
          head: () => this.counted(() => this._headPosition!(), 'query'),
          read: (after, upTo) => {
            if (!filter) return emptyPages();
            const pages = this._readOrdered!(after, upTo, filter)[Symbol.asyncIterator]();
            return parameters!.deletions ? pages : withoutMarkers(pages);
          },
          pull: (it) => this.pull(it),
          envelope: (event) => this.envelope(event),
          failed: (e) => {
            if (isPersistenceError(e, 'ERR_JOURNAL_CORRUPTED')) this.counts.corruptionsDetected++;
          },
          reachedEnd,
        };
        return queryIterator(source, parameters, invalid);
      },
    };
  }

  private queryParameters(options: QueryOptions | EventsByIdOptions | undefined): QueryParameters {
    const live = options?.live ?? false;
    if (typeof live !== 'boolean') throw new TypeError(`options.live must be a boolean, got ${typeof live}`);
    const signal = options?.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new TypeError('options.signal must be an AbortSignal');
    }
    const deletions = options?.deletions ?? false;
    if (typeof deletions !== 'boolean') {
      throw new TypeError(`options.deletions must be a boolean, got ${typeof deletions}`);
    }
    const after = options?.after === undefined ? 0 : this.offsets().decode(options.after, 'options.after');
    return { after, live, signal, deletions };
  }

  private checkQueries(): void {
    if (!this.capabilities.query || !this._readOrdered || !this._headPosition || !this._journalId) {
      throw new TypeError(
        `${this.constructor.name} does not implement queries (capabilities.query is not set); ask canQuery(journal) first`,
      );
    }
  }

  private offsets(): OffsetCodec {
    this.offsetCodec ??= new OffsetCodec(this._journalId!());
    return this.offsetCodec;
  }

  private envelope(event: PositionedEvent): QueryItem<M> {
    if (isDeletionMarker(event)) return deletionEnvelope(event, this.offsets().encode(event.position));
    this.counts.eventsRead++;
    return {
      persistenceId: event.persistenceId,
      sequenceNr: event.sequenceNr,
      timestamp: event.timestamp,
      message: this.decode(event.persistenceId, event),
      tags: event.tags ?? NO_TAGS,
      offset: this.offsets().encode(event.position),
    };
  }

  /** What this journal has done since it was opened (see JournalMetrics); a snapshot, cheap to take. */
  metrics(): JournalMetrics {
    return {
      ...this.counts,
      pendingEvents: this.groupCommit?.pendingSize ?? 0,
      pendingBytes: this.groupCommit?.pendingBytes ?? 0,
      backpressureWaiting: this.backpressure.waiting,
      backpressureWaits: this.backpressure.waits,
      backpressureRejections: this.backpressure.rejections,
      diskBytesUsed: this._diskBytesUsed && this.lifecycle !== 'closed' ? this.measureDisk() : undefined,
      maxDiskBytes: this.maxDiskBytes,
      commitSeconds: this.commitLatency.snapshot(),
    };
  }

  /**
   * What an operator pages on, now (see HealthReport; the status is the worst check's):
   * - `open`: failed once closed;
   * - `last-commit`: failed while the last group commit failed (storage broke), with its age in seconds;
   * - `pending`: the write-ahead lag (events and bytes waiting for commits, appends waiting for room),
   *   degraded from 80% of maxPendingEvents/maxPendingBytes or while appends wait for room;
   * - `corruption`: degraded once a read met corruption since open (run `cairn verify`);
   * - `disk` (journals that measure it): bytes in use, degraded from 80% of maxDiskBytes, failed at it;
   * - and the backend's own (the file journal's `lock`).
   */
  health(): HealthReport {
    const checks: HealthCheck[] = [
      this.lifecycle === 'open'
        ? { name: 'open', status: 'ok', detail: this.readOnly ? 'open, read-only' : 'open' }
        : { name: 'open', status: 'failed', detail: 'closed' },
      this.lastCommit.check('last-commit', 'commit'),
    ];
    const events = this.groupCommit?.pendingSize ?? 0;
    const bytes = this.groupCommit?.pendingBytes ?? 0;
    const waiting = this.backpressure.waiting;
    const share = Math.max(
      events / this.backpressure.maxPendingEvents,
      bytes / this.backpressure.maxPendingBytes,
    );
    checks.push({
      name: 'pending',
      status: waiting > 0 || share >= HEALTH_NEAR_LIMIT ? 'degraded' : 'ok',
      detail:
        `${events} events (${bytes} bytes) waiting for their commit, ${waiting} appends waiting for room ` +
        `(maxPendingEvents ${this.backpressure.maxPendingEvents}, maxPendingBytes ${this.backpressure.maxPendingBytes})`,
      value: events,
    });
    const corruptions = this.counts.corruptionsDetected;
    checks.push({
      name: 'corruption',
      status: corruptions > 0 ? 'degraded' : 'ok',
      detail:
        corruptions > 0
          ? `${corruptions} reads stopped at corruption since open; run \`cairn verify\``
          : 'no corruption seen since open',
      value: corruptions,
    });
    if (this._diskBytesUsed && this.lifecycle !== 'closed') {
      const used = this.measureDisk();
      const cap = this.maxDiskBytes;
      checks.push({
        name: 'disk',
        status:
          cap === undefined
            ? 'ok'
            : used >= cap
              ? 'failed'
              : used >= cap * HEALTH_NEAR_LIMIT
                ? 'degraded'
                : 'ok',
        detail:
          cap === undefined
            ? `${used} bytes in use (no maxDiskBytes)`
            : `${used} of maxDiskBytes ${cap} bytes in use`,
        value: used,
      });
    }
    if (this._healthChecks && this.lifecycle !== 'closed') checks.push(...this._healthChecks());
    return healthReport(checks);
  }

  /**
   * Resolves when every append issued before the call is durable, including appends still loading their
   * id's highest sequenceNr (not yet in the commit queue when flush was called).
   */
  async flush(): Promise<void> {
    this.checkOpen();
    // Each load's append is queued by a reaction registered before this one, so it is queued by then.
    await Promise.allSettled([...this.loading.values()]);
    await this.drainCommits();
  }

  /** Resolves when every append queued or waiting for room at the call has settled. */
  private async drainCommits(): Promise<void> {
    const admitted = this.backpressure.admittedSoFar();
    await this.groupCommit?.drain();
    await admitted;
    await this.groupCommit?.drain();
  }

  close(): Promise<void> {
    if (!this.closing) {
      this.lifecycle = 'closing';
      this.commits.close();
      this.closing = (async () => {
        try {
          await Promise.allSettled([...this.loading.values()]);
          await this.drainCommits();
          this.groupCommit?.stop();
          await this.pullsSettled();
        } finally {
          this.lifecycle = 'closed';
          await this._close();
        }
      })();
    }
    return this.closing;
  }

  /** True once close() has been called. */
  get closed(): boolean {
    return this.lifecycle !== 'open';
  }

  /**
   * Drops what the core remembers of the id's sequence numbers, so the next call reads `_highestSequenceNr`
   * again. For a backend that lowered an id's highest outside appends (a repair after corruption); call it
   * only while no append of the id is pending.
   */
  protected forgetSequenceState(persistenceId: string): void {
    this.ids.delete(persistenceId);
  }

  // ---- internals ----

  /** What every IdReader of this journal uses of it (see id-reader.ts). */
  private readonly readHost: IdReaderHost<M> = {
    checkOpen: () => this.checkOpen(),
    isOpen: () => this.lifecycle === 'open',
    highestSequenceNr: (id) => this.highestSequenceNr(id),
    read: (id, from, to, max) => this._read(id, from, to, max),
    pull: (it) => this.pull(it),
    checkMissing: (id, from, to) => this.checkMissing(id, from, to),
    locate: (id, seq) => this._locate(id, seq),
    decode: (id, stored) => this.decode(id, stored),
    eventRead: () => {
      this.counts.eventsRead++;
    },
    corruptionDetected: () => {
      this.counts.corruptionsDetected++;
    },
  };

  protected checkOpen(): void {
    if (this.lifecycle !== 'open') throw new JournalClosedError('journal');
  }

  /** How many group commits may be in flight at once (never two of one id). */
  protected maxConcurrentCommits(): number {
    return this.capabilities.concurrentCommits ? 4 : 1;
  }

  private commitQueue(): GroupCommit<IdState, QueuedAppend> {
    this.groupCommit ??= new GroupCommit<IdState, QueuedAppend>({
      maxBatchSize: this.maxBatchSize,
      maxBatchDelayMs: this.maxBatchDelayMs,
      maxConcurrentCommits: this.maxConcurrentCommits(),
      commit: (writes) =>
        this.capabilities.sharedWriters
          ? this.sharedCommit(writes)
          : this.timedCommit(writes).then(() => undefined),
      settled: (items, error) => this.committed(items, error),
      // A sequence conflict (another process wrote to one id) fails that id's appends only.
      isolate: (error, items) =>
        isPersistenceError(error, 'ERR_SEQUENCE_CONFLICT')
          ? new Set(
              items
                .filter((q) => q.write.persistenceId === (error as SequenceConflictError).persistenceId)
                .map((q) => q.key),
            )
          : undefined,
    });
    return this.groupCommit;
  }

  /** One group commit through the backend, counted and timed for metrics(). */
  private timedCommit(writes: readonly JournalWrite[]): Promise<WriteConflicts | undefined> {
    const started = performance.now();
    return this.storage(() => this._write(writes), 'append').then(
      (conflicts) => {
        this.commitLatency.since(started);
        this.counts.commits++;
        this.lastCommit.succeeded();
        if (this.maxDiskBytes !== undefined) this.measureDisk();
        for (const w of writes) {
          if (!conflicts?.has(w.persistenceId)) this.counts.eventsAppended += w.events.length;
        }
        this.commits.notify();
        return conflicts ?? undefined;
      },
      (e: unknown) => {
        this.commitLatency.since(started);
        if (isPersistenceError(e, 'ERR_SEQUENCE_CONFLICT')) this.counts.sequenceConflicts++;
        else {
          this.counts.commitFailures++;
          this.lastCommit.failed(e);
        }
        throw e;
      },
    );
  }

  /**
   * A group commit of a journal with sharedWriters: numbers each id's writes from what this process last
   * saw committed (or from their expectation), lets storage judge, and turns its verdict into outcomes:
   * an id another process wrote meanwhile learns the stored highest; its write that expected something
   * else fails with SequenceConflictError, and the rest of its writes are numbered again and retried.
   */
  private async sharedCommit(writes: readonly QueuedAppend[]): Promise<PartialCommit | undefined> {
    const states = new Map<string, IdState>();
    for (const w of writes) {
      if (states.has(w.persistenceId)) continue;
      const state = this.ids.get(w.persistenceId) ?? (await this.loadState(w.persistenceId));
      if (state.stale) {
        state.durable = await this.storage(() => this._highestSequenceNr(w.persistenceId), 'append');
        state.stale = false;
      }
      states.set(w.persistenceId, state);
    }
    const retry = new Set<number>();
    const failed = new Map<number, unknown>();
    const running = new Map<string, number>();
    const bases = new Map<string, number>();
    const sent: QueuedAppend[] = [];
    const sentIndex: number[] = [];
    writes.forEach((w, i) => {
      const id = w.persistenceId;
      const before = running.get(id);
      // An id's writes in one commit must be consecutive: one expecting other than its predecessor's
      // end waits (with the id's later writes) for the next commit, where storage judges it.
      if (before === -1 || (before !== undefined && w.expected !== undefined && w.expected !== before)) {
        running.set(id, -1);
        retry.add(i);
        return;
      }
      const base = before ?? w.expected ?? states.get(id)!.durable;
      if (before === undefined) bases.set(id, base);
      w.events = w.events.map((e, k) => ({ ...e, sequenceNr: base + 1 + k }));
      running.set(id, base + w.events.length);
      sent.push(w);
      sentIndex.push(i);
    });
    const conflicts = sent.length > 0 ? await this.timedCommit(sent) : undefined;
    const firstOf = new Set<string>();
    sent.forEach((w, k) => {
      const i = sentIndex[k]!;
      const state = states.get(w.persistenceId)!;
      const actual = conflicts?.get(w.persistenceId);
      const first = !firstOf.has(w.persistenceId);
      firstOf.add(w.persistenceId);
      if (actual instanceof Error) {
        failed.set(i, actual);
        return;
      }
      if (actual === undefined) {
        state.durable = Math.max(state.durable, w.events[w.events.length - 1]!.sequenceNr);
        state.assigned = Math.max(state.assigned, state.durable);
        return;
      }
      if (actual === bases.get(w.persistenceId)) {
        // Retrying would loop: the backend reports as conflicting the very highest the write continued.
        failed.set(
          i,
          new StorageError(
            `journal append of "${w.persistenceId}": storage reported a conflict at its own highest ${actual}`,
          ),
        );
        return;
      }
      state.durable = actual;
      state.assigned = Math.max(state.assigned, actual);
      if (first && w.expected !== undefined) {
        this.counts.sequenceConflicts++;
        failed.set(i, new SequenceConflictError(w.persistenceId, w.expected, actual));
      } else {
        retry.add(i);
      }
    });
    return retry.size > 0 || failed.size > 0 ? { failed, retry } : undefined;
  }

  private committed(items: readonly QueuedWrite<IdState, QueuedAppend>[], error: unknown): void {
    this.backpressure.roomFreed();
    if (error === undefined) {
      for (const { key, write } of items) {
        key.durable = Math.max(key.durable, write.events[write.events.length - 1]!.sequenceNr);
      }
      return;
    }
    if (this.capabilities.sharedWriters) {
      // Later writes are numbered when their commit starts: they go on, after storage is asked again.
      // A conflict already set `durable` to what storage holds.
      if (!isPersistenceError(error, 'ERR_SEQUENCE_CONFLICT')) for (const q of items) q.key.stale = true;
      return;
    }
    // The queued appends of a failed id were numbered after the failed ones: fail them too, and forget
    // the id so its highest is read from storage again (the failed write's outcome may be unknown).
    const failed = new Set(items.map((q) => q.key));
    for (const state of failed) {
      for (const q of this.groupCommit!.drop(state)) q.reject(error);
      const id = items.find((q) => q.key === state)!.write.persistenceId;
      if (this.ids.get(id) === state) this.ids.delete(id);
    }
  }

  /**
   * Sequence numbers `from`..`to` were expected but not read. Truncation explains those below the
   * low-water mark; any other missing number is corruption, named, never skipped.
   */
  private async checkMissing(persistenceId: string, from: number, to: number): Promise<void> {
    if (from > to || !this._lowWaterMark) return;
    const lowWater = await this.storage(() => this._lowWaterMark!(persistenceId), 'read');
    const missing = Math.max(from, lowWater);
    if (missing > to) return;
    throw new JournalCorruptedError({
      persistenceId,
      sequenceNr: missing,
      ...this._locate(persistenceId, missing),
      reason: `sequenceNr ${missing} is missing: the journal's highest is at least ${to} and nothing below ${lowWater} was truncated`,
    });
  }

  /** Resolves when every append of the id issued before the call has settled (including one still loading the id's state). */
  private async writesIssued(persistenceId: string): Promise<void> {
    const loading = this.loading.get(persistenceId);
    if (loading) await loading.catch(settle);
    await this.ids.get(persistenceId)?.lastWrite?.then(settle, settle);
  }

  private loadState(persistenceId: string): Promise<IdState> {
    let loading = this.loading.get(persistenceId);
    if (!loading) {
      loading = this.storage(() => this._highestSequenceNr(persistenceId), 'highestSequenceNr')
        .then((highest) => {
          const state: IdState = { assigned: highest, durable: highest, lastWrite: undefined };
          if (this.lifecycle === 'open') this.ids.set(persistenceId, state);
          return state;
        })
        .finally(() => this.loading.delete(persistenceId));
      this.loading.set(persistenceId, loading);
    }
    return loading;
  }

  private encodeAll(persistenceId: string, messages: readonly M[]): Uint8Array[] {
    return messages.map((message, i) =>
      this.encodeOne(
        persistenceId,
        message,
        messages.length === 1 ? 'the message' : `message ${i} of the batch`,
      ),
    );
  }

  private encodeOne(persistenceId: string, message: M, what: string): Uint8Array {
    try {
      return this.serializer.encode(message);
    } catch (e) {
      this.counts.serializationRejections++;
      throw new WriteRejectedError(
        persistenceId,
        `${what} cannot be serialized by "${this.serializer.name}": ${(e as Error)?.message ?? e}`,
        { cause: e },
      );
    }
  }

  private decode(persistenceId: string, stored: StoredEvent): M {
    const serializer = this.serializers.get(stored.serializerId);
    const fail = (reason: string, cause?: unknown): JournalCorruptedError =>
      new JournalCorruptedError(
        {
          persistenceId,
          sequenceNr: stored.sequenceNr,
          ...this._locate(persistenceId, stored.sequenceNr),
          reason,
        },
        { cause },
      );
    if (!serializer) throw fail(`unknown serializer id ${stored.serializerId}`);
    try {
      if (stored instanceof StoredEventInBuffer && serializer.decodeRange) {
        return serializer.decodeRange(stored.bytes, stored.start, stored.end) as M;
      }
      return serializer.decode(stored.payload) as M;
    } catch (e) {
      throw fail(`payload cannot be decoded by "${serializer.name}": ${(e as Error)?.message ?? e}`, e);
    }
  }

  /** One pull from a backend iterator, counted so close() waits for it before releasing storage. */
  private pull<T>(it: AsyncIterator<T>): Promise<IteratorResult<T>> {
    return this.counted(() => it.next(), 'read');
  }

  /**
   * A read of storage that close() waits for before `_close` (a pull, a query's head): a backend whose
   * reads are asynchronous I/O never has its connections closed under one.
   */
  private async counted<T>(call: () => Promise<T>, operation: string): Promise<T> {
    this.checkOpen();
    this.activePulls++;
    try {
      return await this.storage(call, operation);
    } finally {
      if (--this.activePulls === 0) this.pullsIdle?.();
    }
  }

  private pullsSettled(): Promise<void> {
    if (this.activePulls === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.pullsIdle = () => {
        this.pullsIdle = undefined;
        resolve();
      };
    });
  }

  /** Runs a storage call; a failure that is not already a PersistenceError becomes a StorageError. */
  protected async storage<T>(call: () => Promise<T>, operation: string): Promise<T> {
    try {
      return await call();
    } catch (e) {
      if (isPersistenceError(e)) throw e;
      throw new StorageError(`journal ${operation} failed: ${(e as Error)?.message ?? String(e)}`, {
        cause: e,
      });
    }
  }
}

/** Serialized bytes of a write's payloads: what backpressure counts against maxPendingBytes. */
function payloadBytes(payloads: readonly Uint8Array[]): number {
  let bytes = 0;
  for (const p of payloads) bytes += p.byteLength;
  return bytes;
}

/** The pages of an empty range. */
function emptyPages(): AsyncIterator<readonly PositionedEvent[]> {
  return { next: async () => ({ done: true, value: undefined }) };
}
