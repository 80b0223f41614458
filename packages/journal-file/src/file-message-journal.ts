import { readdir } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { HealthCheck } from '@cairn/actor-core';
import {
  AbstractMessageJournal,
  type CompactionResult,
  type CorruptionLocation,
  checkDirectoryPath,
  checkPersistenceId,
  isPersistenceError,
  type JournalCapabilities,
  type JournalWrite,
  type OrderedFilter,
  type PositionedEvent,
  ReadOnlyError,
  SequenceConflictError,
  StorageError,
  type StoredEvent,
  storeBackendOf,
} from '@cairn/actor-core';
import { FileOffsetStore } from './file-offset-store';
import type { RepairEntry } from './index-file';
import { JournalIo } from './journal-io';
import {
  checkOptions,
  DEFAULT_LOCK_STALE_MS,
  DEFAULT_SEGMENT_SIZE,
  type FileMessageJournalOptions,
} from './journal-options';
import { openLog } from './log-open';
import { LogRepairs } from './log-repairs';
import { OrderedReads } from './ordered-reads';
import { parseSegmentFileName } from './record-codec';
import type { CorruptionRepair } from './repair';
import { SegmentLog } from './segment-log';

/** A read-only open retries this often when a live writer deletes or replaces a file under it. */
const READ_ONLY_OPEN_ATTEMPTS = 3;

/**
 * A durable journal in one directory: every persistence id's events go to one shared, segmented,
 * append-only log, committed in groups (many appends, one write and one fdatasync), with an in-memory
 * index of where each id's events are. See the package README for the design and its crash argument.
 *
 * Guarantees, beyond the MessageJournal contract: an acknowledged append survives SIGKILL and (with
 * fsync, the default) power loss; an appendBatch is all or nothing across a crash; a torn tail is cut
 * back on open and reported; corruption anywhere else makes reads of the affected id reject with
 * JournalCorruptedError at that point, and nothing is deleted to "repair" it: `repairAfterCorruption`
 * cuts such an id back to its last good record on request, keeping the cut bytes in a quarantine file.
 * `readOnly: true` opens it for inspection beside a live writer, without a lock, writing nothing.
 *
 * This class is the SPI surface; the work is in the log it holds: opening and recovery (log-open.ts),
 * commits and the checkpoint (segment-log.ts), background sealing and compaction (log-maintenance.ts),
 * repairs (log-repairs.ts), reads (log-reader.ts, ordered-reads.ts).
 */
export class FileMessageJournal<M = unknown> extends AbstractMessageJournal<M> {
  /**
   * concurrentCommits: _write may be called again before an earlier call settled (the group commit then
   * forms the next batch while a sync is in flight); frames still go to the log one after another, in
   * call order, each with its own fdatasync, so a commit never lands behind an unfinished one.
   */
  readonly capabilities: JournalCapabilities = {
    persistent: true,
    health: true,
    concurrentCommits: true,
    query: true,
    deletion: true,
    compact: true,
    readOnly: true,
    import: true,
    repair: true,
    flush: true,
    metrics: true,
  };
  /** The journal directory, as given. */
  readonly path: string;
  readonly fsync: boolean;
  readonly segmentSize: number;

  private readonly dir: string;
  private readonly lockStaleMs: number;
  /** The journal's own IO threads, which its log does all blocking file work on. */
  private readonly io: JournalIo;
  private readonly log: SegmentLog;
  private readonly repairs: LogRepairs;
  /** Serves the ordered reads of the queries from the log's order, through its reader. */
  private readonly orderedReads: OrderedReads;
  private journalIdValue = '';

  private constructor(options: FileMessageJournalOptions) {
    super(options);
    this.path = options.path;
    this.dir = path.resolve(options.path);
    this.fsync = options.fsync ?? true;
    this.segmentSize = options.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    this.lockStaleMs = options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS;
    this.io = new JournalIo(
      options.ioThreads ?? Math.max(1, Math.floor(os.availableParallelism() / 2)),
      options.ioIdleMs,
    );
    this.log = new SegmentLog({
      dir: this.dir,
      io: this.io,
      fsync: this.fsync,
      segmentSize: this.segmentSize,
      reporter: this.reporter,
      closed: () => this.closed,
    });
    this.repairs = new LogRepairs(this.log, this, (id) => this.forgetSequenceState(id));
    this.orderedReads = new OrderedReads(this.log.reader, this.log.order, this.log.index, this.log.segments);
  }

  /**
   * True when `directory` holds a file journal: the file backend's marker (or none, as data written
   * before markers has none) and at least one segment (`NNNNNNNNNNNNNNNN.log`). Reads only; for tools
   * pointed at a bare directory.
   */
  static async holdsJournal(directory: string): Promise<boolean> {
    const backend = await storeBackendOf(directory);
    if (backend !== undefined && backend !== 'file') return false;
    const names = await readdir(directory).catch(() => [] as string[]);
    return names.some((name) => parseSegmentFileName(name) !== undefined);
  }

  /**
   * Opens (creating when missing) the journal in `options.path`, taking its lock. Only what was written
   * since the last sealed segment is scanned. Rejects with JournalLockedError when another process (or
   * another open journal in this one) holds the directory. With `readOnly`, takes no lock and writes
   * nothing (see the option); a file a live writer deletes or replaces meanwhile makes it start over.
   */
  static async open<M = unknown>(options: FileMessageJournalOptions): Promise<FileMessageJournal<M>> {
    checkOptions(options);
    await checkDirectoryPath(options.path, 'file journal');
    for (let attempt = 1; ; attempt++) {
      const journal = new FileMessageJournal<M>(options);
      try {
        journal.journalIdValue = await openLog(journal.log, {
          readOnly: journal.readOnly,
          lockStaleMs: journal.lockStaleMs,
        });
        return journal;
      } catch (e) {
        await journal.log.close().catch(() => undefined);
        const vanished = (e as NodeJS.ErrnoException)?.code === 'ENOENT';
        if (journal.readOnly && vanished && attempt < READ_ONLY_OPEN_ATTEMPTS) continue;
        if (isPersistenceError(e)) throw e;
        throw new StorageError(
          `opening the journal in ${journal.dir} failed: ${(e as Error)?.message ?? e}`,
          { cause: e },
        );
      }
    }
  }

  // ---- writing ----

  /**
   * While the id is being repaired, a write waits for the repair (and is numbered after the kept
   * records); its messages were serialized at the call, so changing them afterwards changes nothing.
   * (Read-only refusals are the core's.)
   */
  protected override writeGate(persistenceId: string): Promise<void> | undefined {
    return this.repairs.inProgress(persistenceId);
  }

  protected async _write(writes: readonly JournalWrite[]): Promise<void> {
    await this.log.append(writes);
  }

  /** `sequenceNr` is already clamped to highest + 1 by the core. */
  protected async _truncateBefore(persistenceId: string, sequenceNr: number): Promise<void> {
    const entry = this.log.entry(persistenceId);
    if (sequenceNr <= entry.lowWater) return;
    await this.log.commitLowWater(persistenceId, sequenceNr, () => {
      for (const s of entry.raiseLowWater(sequenceNr)) {
        const segment = this.log.segments.get(s);
        if (segment) segment.liveIds--;
      }
    });
    this.log.maintenance.removeDeadSegments();
    this.log.maintenance.scheduleCompaction();
  }

  /** A low-water mark record for an id that never had events: its highest reads `highest` from then on. */
  protected override async _startAfter(persistenceId: string, highest: number): Promise<void> {
    const entry = this.log.entry(persistenceId);
    if (entry.highest !== 0) throw new SequenceConflictError(persistenceId, 0, entry.highest);
    await this.log.commitLowWater(persistenceId, highest + 1, () => {
      entry.raiseLowWater(highest + 1);
    });
  }

  // ---- repair after corruption ----

  /**
   * Cuts `persistenceId` back to its last good record, for an id whose reads reject with
   * JournalCorruptedError: the id's records from the first unreadable one on (and only the id's: other
   * ids' records in the same segments stay) are copied byte for byte into
   * `<path>/quarantine/<time>-<id>.records` (a JSON header line saying what they are, then the bytes),
   * then made unreachable for good: the repair is recorded in the checkpoint (atomic, fsynced) and new
   * events of the id go to a segment begun after it. highestSequenceNr drops to the last good
   * sequenceNr, so the next append reuses the cut numbers. Appends and truncations of the id wait for
   * it; other ids go on.
   *
   * Crash-safe: the quarantine file is complete (renamed into place) before the checkpoint that makes
   * the cut, and a crash before that rename leaves the id as it was (still corrupt, still detected);
   * after it, repaired. Rejects with RepairRefusedError, changing nothing, when the id reads back clean
   * (or has no events), and with ReadOnlyError when opened read-only.
   */
  async repairAfterCorruption(persistenceId: string): Promise<CorruptionRepair> {
    this.checkOpen();
    checkPersistenceId(persistenceId);
    this.refuseWhenReadOnly('repairAfterCorruption');
    return this.repairs.repair(persistenceId);
  }

  /**
   * The repairs whose cut records may still be in a segment (oldest first): what was cut, when, where
   * the bytes went, and whether an operator acknowledged it. For `cairn verify`, which shows them as
   * history.
   */
  repairHistory(persistenceId?: string): RepairEntry[] {
    this.checkOpen();
    return this.repairs.history(persistenceId);
  }

  /**
   * Records that an operator checked the repairs of `persistenceId` (the cut records, the quarantine
   * file, snapshots past the cut): from then on, opening the journal no longer reports the dead records
   * those repairs cut as corruption found (they are history, listed by `repairHistory`). Durable when it
   * resolves. Resolves to the repairs it acknowledged (none when there was nothing left to acknowledge);
   * ReadOnlyError when opened read-only.
   */
  async acknowledgeRepairs(persistenceId: string): Promise<RepairEntry[]> {
    this.checkOpen();
    checkPersistenceId(persistenceId);
    this.refuseWhenReadOnly('acknowledgeRepairs');
    return this.repairs.acknowledge(persistenceId);
  }

  // ---- compaction ----

  /**
   * CompactableJournal: gives the space of truncated and deleted events back now, then resolves with the
   * log's bytes before and after. It seals the segment being written when that holds a dead record,
   * deletes the sealed segments with no live event and rewrites every one holding a dead record (records
   * copied as they are, checksums included), so no truncated or deleted event's bytes are left in the
   * log's files (a quarantine file of a repair keeps what it cut). In the background the journal only
   * rewrites sealed segments less than half live, after truncations and on open; call this after a
   * deletion, or to reclaim space at a moment of your choosing. Appends and reads go on meanwhile.
   */
  async compact(): Promise<CompactionResult> {
    this.checkOpen();
    this.refuseWhenReadOnly('compact');
    const bytesBefore = this.log.bytesUsed();
    await this.log.maintenance.compactAll();
    return { bytesBefore, bytesAfter: this.log.bytesUsed() };
  }

  // ---- reading ----

  protected async _highestSequenceNr(persistenceId: string): Promise<number> {
    return this.log.index.get(persistenceId)?.highest ?? 0;
  }

  protected async *_persistenceIds(): AsyncGenerator<string> {
    for (const [id, entry] of this.log.index) if (entry.highest > 0) yield id;
  }

  protected _read(
    persistenceId: string,
    fromSequenceNr: number,
    toSequenceNr: number,
    max: number,
  ): AsyncGenerator<StoredEvent[]> {
    return this.log.reader.read(persistenceId, fromSequenceNr, toSequenceNr, max);
  }

  // ---- queries (the core implements EventQuery over these) ----

  protected override _journalId(): string {
    return this.journalIdValue;
  }

  protected override async _headPosition(): Promise<number> {
    return this.log.head;
  }

  /**
   * A live query needs to learn about commits. This process's commits wake it by themselves; a journal
   * opened read-only sees what was committed when it opened, so a live query on it is refused (open a
   * new read-only journal to see more, or run live queries in the writing process).
   */
  protected override _watchForeignCommits(): () => void {
    if (this.readOnly) {
      throw new ReadOnlyError(
        this.path,
        'a live query is refused: opened read-only, this journal sees what was committed when it opened; reopen it to see newer events',
      );
    }
    return () => undefined;
  }

  protected override _readOrdered(
    after: number,
    upTo: number,
    filter: OrderedFilter,
  ): AsyncGenerator<PositionedEvent[]> {
    return this.orderedReads.read(after, upTo, filter);
  }

  /** The OffsetStore kept in this journal's directory (`offsets/`): see FileOffsetStore. */
  offsetStore(): FileOffsetStore {
    return new FileOffsetStore(path.join(this.dir, 'offsets'), this.fsync, () => this.closed);
  }

  protected override async _lowWaterMark(persistenceId: string): Promise<number> {
    return this.log.index.get(persistenceId)?.lowWater ?? 1;
  }

  protected override _locate(
    persistenceId: string,
    sequenceNr: number,
  ): Pick<CorruptionLocation, 'file' | 'offset' | 'key'> {
    return this.log.reader.locate(persistenceId, sequenceNr);
  }

  // ---- health and closing ----

  /**
   * `lock`: the directory's lock held and the log writable; failed once the lock was lost (or a failed
   * write could not be undone): the journal then refuses writes until reopened.
   */
  protected override _healthChecks(): HealthCheck[] {
    if (this.readOnly) return [{ name: 'lock', status: 'ok', detail: 'read-only: no lock taken' }];
    const failure = this.log.failure;
    if (failure) return [{ name: 'lock', status: 'failed', detail: failure.message }];
    return [{ name: 'lock', status: 'ok', detail: `${this.dir} locked by this process` }];
  }

  /**
   * maxDiskBytes counts the live segments' bytes: what truncation frees comes back when a segment with
   * no live events left is deleted, or compacted (see segmentSize).
   */
  protected override _diskBytesUsed(): number {
    return this.log.bytesUsed();
  }

  protected async _close(): Promise<void> {
    await this.log.close();
  }
}
