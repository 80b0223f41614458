import { close as closeFd, read } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  AbstractMessageJournal,
  type CorruptionLocation,
  checkPersistenceId,
  crc32,
  isPersistenceError,
  type JournalCapabilities,
  JournalCorruptedError,
  type JournalOptions,
  type JournalWrite,
  ReadOnlyError,
  SequenceConflictError,
  StorageError,
  type StoredEvent,
  StoredEventInBuffer,
} from '@cairn/actor-core';
import {
  CHECKPOINT_FILE,
  type Checkpoint,
  decodeCheckpoint,
  decodeIndex,
  encodeCheckpoint,
  type RepairEntry,
} from './index-file';
import { RepairRefusedError } from './journal-errors';
import { JournalIo } from './journal-io';
import { JournalLock } from './journal-lock';
import { type CorruptPoint, IdIndex } from './log-index';
import {
  decodeRecord,
  type EncodedFrame,
  encodeFrame,
  encodeRawFrame,
  encodeSegmentHeader,
  indexFileName,
  intactEventLength,
  isBadRecord,
  parseSegmentFileName,
  RECORD_HEADER_SIZE,
  SEGMENT_HEADER_SIZE,
  segmentFileName,
  whyNotIntact,
} from './record-codec';
import type { SegmentContents, SegmentScan } from './segment-scan';

/** Options of FileMessageJournal.open. */
export interface FileMessageJournalOptions extends JournalOptions {
  /**
   * The journal directory; created when missing (not with `readOnly`). One process writes it at a time
   * (it is locked).
   */
  readonly path: string;
  /**
   * fdatasync every commit before acknowledging it, and fsync the directory when a segment is created
   * or deleted. Default true: an acknowledged append survives a crash and a power loss.
   * false: an append is acknowledged once the OS has it; a process crash loses nothing, but a power
   * loss may lose the unsynced tail (never older data). Roughly 10x the throughput on slow disks.
   * The rare operations that rewrite or account for older data (creating a segment, the checkpoint, a
   * compacted segment) are synced in both modes: skipping those could lose old data, not just the tail.
   */
  readonly fsync?: boolean;
  /**
   * Bytes after which the log rolls to a new segment file. Default 64 MiB. Truncated space comes back
   * a whole segment at a time, so smaller segments return space sooner; larger ones mean fewer files.
   */
  readonly segmentSize?: number;
  /**
   * Threads of the journal's IO pool (writes, syncs, scans). Default max(1, floor(cores / 2)). One
   * thread already keeps the disk busy for a single log; more help scans on open and sealing.
   */
  readonly ioThreads?: number;
  /**
   * How long a lock left by a dead process (not refreshed) blocks others before it is taken over.
   * Default 10,000 ms (minimum 2,000). Shorter recovers faster after a crash; too short risks taking
   * the lock from a live process whose event loop was blocked that long.
   */
  readonly lockStaleMs?: number;
  /**
   * Default false. `true` opens an existing journal for reading only, for tools and inspection beside a
   * running application: no lock is taken, and nothing is created, cut, compacted, deleted or synced
   * (a missing directory rejects with StorageError). Every write (append, appendBatch, importEntries,
   * truncateBefore, compact, repairAfterCorruption) rejects with ReadOnlyError (`ERR_READ_ONLY`).
   * It reads what was committed when it opened (another process may go on appending: its events after
   * that are not seen, and a partly written last commit is "not written yet", reported as
   * `torn-tail-ignored`, never cut). Trade-off: a snapshot as of open; reopen to see newer events.
   */
  readonly readOnly?: boolean;
}

/** What `repairAfterCorruption` cut, and where the cut bytes went. */
export interface CorruptionRepair {
  /** The last good sequenceNr kept: highestSequenceNr afterwards, and the next append is this + 1. */
  readonly keptThrough: number;
  /** The sequenceNrs cut (the first unreadable one through the old highest), first..last. */
  readonly removed: { readonly first: number; readonly last: number } | undefined;
  /** The quarantine file holding the cut records byte for byte (absolute path). */
  readonly quarantine: string;
  /** Bytes copied into the quarantine file (the records, without its header). */
  readonly bytes: number;
  /** Why the first cut record was unreadable, as the read reported it. */
  readonly reason: string;
}

export const DEFAULT_SEGMENT_SIZE = 64 * 1024 * 1024;
export const DEFAULT_LOCK_STALE_MS = 10_000;
const MIN_SEGMENT_SIZE = 4096;
/** A read fetches up to this much of a segment at once (neighbouring runs of an id in one go). */
const READ_CHUNK = 256 * 1024;
/** Runs this close together are read together; the bytes between them (other ids) are skipped. */
const READ_GAP = 64 * 1024;
const PAGE_EVENTS = 1024;
/** A sealed segment whose live bytes fall below this share of its size is compacted. */
const COMPACT_BELOW = 0.5;
/** Truncations look for sparse segments at most this often (compact() looks at once). */
const COMPACTION_INTERVAL_MS = 5000;
/** Compacted segments are written in frames of about this size. */
const COMPACT_FRAME_BYTES = 1024 * 1024;
/** Damaged bytes whose extent is unknown are quarantined up to this much. */
const QUARANTINE_UNKNOWN_EXTENT = 64 * 1024;
/** A read-only open retries this often when a live writer deletes or replaces a file under it. */
const READ_ONLY_OPEN_ATTEMPTS = 3;
/** The directory, inside the journal's, of the files holding records cut by repairs. */
export const QUARANTINE_DIR = 'quarantine';

/** A planned read: runs [firstRun, lastRun] of one id, at [start, stop) of one segment. */
interface ReadChunk {
  /** Undefined when the segment the index names is gone (reads reject, naming `file`). */
  readonly segment: Segment | undefined;
  readonly file: string;
  readonly start: number;
  readonly stop: number;
  readonly firstRun: number;
  readonly lastRun: number;
  readonly offsets: readonly number[];
  readonly lengths: readonly number[];
  readonly firsts: readonly number[];
  /** The last sequenceNr of the last run. */
  readonly lastSeq: number;
  /** Events the runs hold. */
  readonly events: number;
}

/** Where the records of a page being served are: offsets[i] is sequenceNr first + i. */
interface ServedPage {
  readonly file: string;
  readonly first: number;
  readonly offsets: readonly number[];
}

/** A chunk's bytes, and how far (from its start) an IO thread already verified its records. */
interface ChunkBytes {
  readonly bytes: Buffer;
  readonly verifiedTo: number;
}

/** The runs of a chunk for the IO thread to verify (offsets relative to the chunk). */
interface RunsToVerify {
  readonly offsets: readonly number[];
  readonly lengths: readonly number[];
  readonly firsts: readonly number[];
  readonly id: Buffer;
}

/**
 * Chunks at least this big are read and checked by an IO thread (see readChunk): the hop costs about as
 * much as checking a few hundred records here, so small reads stay on the main thread.
 */
const VERIFY_OFF_THREAD_BYTES = 64 * 1024;

function sameChunk(a: ReadChunk, b: ReadChunk): boolean {
  return a.segment === b.segment && a.start === b.start && a.stop === b.stop;
}

interface Segment {
  readonly number: number;
  readonly file: string;
  /** Open descriptor, or undefined for a sealed segment not read yet. */
  fd: number | undefined;
  opening: Promise<number> | undefined;
  /** Bytes in use; for the active segment, where the next frame goes. */
  end: number;
  /** No longer written to; it has or is getting its sidecar index. */
  sealed: boolean;
  /** Ids with events at or above their low-water mark in this segment. Dead (deletable) at 0. */
  liveIds: number;
  /** Holds corruption: never deleted automatically. */
  problems: boolean;
  readers: number;
  deleted: boolean;
  /** Deleted because a compacted copy (a new Segment with the same number) took its place. */
  replaced: boolean;
}

/** A stretch of one segment that a repair copies into the quarantine file. */
interface DeadRange {
  readonly segment: Segment;
  readonly offset: number;
  readonly length: number;
  readonly first: number;
  readonly last: number;
  readonly note?: string;
}

function settledQuietly(): void {}

/**
 * An id as part of a file name: percent-encoded (so "/" and ".." cannot escape the directory), cut to
 * 80 characters, with a CRC32 of the whole id so two long ids sharing a prefix stay apart.
 */
function quarantineName(persistenceId: string): string {
  const escaped = encodeURIComponent(persistenceId).replace(
    /[!'()*~.]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  const crc = crc32(Buffer.from(persistenceId, 'utf8')).toString(16).padStart(8, '0');
  return `${escaped.slice(0, 80)}-${crc}`;
}

function checkOptions(options: unknown): asserts options is FileMessageJournalOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError('FileMessageJournal.open needs an options object with a path');
  }
  const o = options as Record<string, unknown>;
  if (typeof o.path !== 'string' || o.path.length === 0) {
    throw new TypeError('options.path must be a non-empty string (the journal directory)');
  }
  if (o.fsync !== undefined && typeof o.fsync !== 'boolean')
    throw new TypeError('options.fsync must be a boolean');
  if (o.readOnly !== undefined && typeof o.readOnly !== 'boolean')
    throw new TypeError('options.readOnly must be a boolean');
  const integer = (name: string, min: number) => {
    const v = o[name];
    if (v === undefined) return;
    if (typeof v !== 'number' || !Number.isSafeInteger(v))
      throw new TypeError(`options.${name} must be an integer`);
    if (v < min) throw new RangeError(`options.${name} must be >= ${min}, got ${v}`);
  };
  integer('segmentSize', MIN_SEGMENT_SIZE);
  integer('ioThreads', 1);
  integer('lockStaleMs', 2000);
}

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
 */
export class FileMessageJournal<M = unknown> extends AbstractMessageJournal<M> {
  /**
   * concurrentCommits: _write may be called again before an earlier call settled (the group commit then
   * forms the next batch while a sync is in flight); frames still go to the log one after another, in
   * call order, each with its own fdatasync, so a commit never lands behind an unfinished one.
   */
  readonly capabilities: JournalCapabilities = { persistent: true, concurrentCommits: true };
  /** The journal directory, as given. */
  readonly path: string;
  readonly fsync: boolean;
  readonly segmentSize: number;
  /** Opened with `readOnly: true`: every write rejects with ReadOnlyError. */
  readonly readOnly: boolean;

  private readonly dir: string;
  private readonly io: JournalIo;
  private readonly lockStaleMs: number;
  private lock: JournalLock | undefined;
  private readonly index = new Map<string, IdIndex>();
  private readonly segments = new Map<number, Segment>();
  private active!: Segment;
  /** Log writes, one at a time, in order. */
  private writing: Promise<unknown> = Promise.resolve();
  /** Background sealing, compaction and segment deletion, one at a time. */
  private maintenance: Promise<void> = Promise.resolve();
  private compactionQueued = false;
  private lastCompaction = Number.NEGATIVE_INFINITY;
  /** Per id, the page last handed to the base class, for exact offsets in decode failures (_locate). */
  private readonly served = new Map<string, ServedPage>();
  /** Segment reads in flight (prefetches included): close() waits for them before closing descriptors. */
  private readonly reads = new Set<Promise<unknown>>();
  /** Set when the log can no longer be written safely (lock lost, a failed write not undone). */
  private failure: StorageError | undefined;
  /** Every repair whose dead records may still be on disk (kept in the checkpoint). */
  private repairs: RepairEntry[] = [];
  /** Ids being repaired: their appends and truncations wait for it. */
  private readonly repairing = new Map<string, Promise<void>>();

  private constructor(options: FileMessageJournalOptions) {
    super(options);
    this.path = options.path;
    this.dir = path.resolve(options.path);
    this.fsync = options.fsync ?? true;
    this.segmentSize = options.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    this.lockStaleMs = options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS;
    this.readOnly = options.readOnly ?? false;
    this.io = new JournalIo(options.ioThreads ?? Math.max(1, Math.floor(os.availableParallelism() / 2)));
  }

  /**
   * Opens (creating when missing) the journal in `options.path`, taking its lock. Only what was written
   * since the last sealed segment is scanned. Rejects with JournalLockedError when another process (or
   * another open journal in this one) holds the directory. With `readOnly`, takes no lock and writes
   * nothing (see the option); a file a live writer deletes or replaces meanwhile makes it start over.
   */
  static async open<M = unknown>(options: FileMessageJournalOptions): Promise<FileMessageJournal<M>> {
    checkOptions(options);
    for (let attempt = 1; ; attempt++) {
      const journal = new FileMessageJournal<M>(options);
      try {
        await journal.load();
        return journal;
      } catch (e) {
        await journal.releaseResources().catch(() => undefined);
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

  // ---- open ----

  private async load(): Promise<void> {
    const entries = this.readOnly ? await this.listReadOnly() : await this.lockDirectory();
    const leftovers = entries.filter((name) => name.startsWith('.') && name.endsWith('.tmp'));
    if (leftovers.length > 0 && !this.readOnly) {
      await this.io.run('removeFiles', {
        dir: this.dir,
        files: leftovers.map((n) => path.join(this.dir, n)),
        sync: this.fsync,
      });
    }
    if (entries.includes(QUARANTINE_DIR) && !this.readOnly) {
      await this.io.run('removeTempFiles', { dir: path.join(this.dir, QUARANTINE_DIR), sync: this.fsync });
    }
    const numbers = entries
      .map(parseSegmentFileName)
      .filter((n): n is number => n !== undefined)
      .sort((a, b) => a - b);
    const indexed = new Set(entries.filter((n) => n.endsWith('.idx')));

    // Listed before the checkpoint is read: a live writer writes the checkpoint before deleting.
    const checkpoint = await this.loadCheckpoint();
    this.checkSegmentsPresent(numbers, checkpoint);
    this.repairs = [...(checkpoint?.repairs ?? [])];
    const marks = new Map(checkpoint?.marks ?? []);
    const contents: SegmentContents[] = [];
    const problemsFound: Array<{ file: string; scan: SegmentScan }> = [];
    for (const [i, number] of numbers.entries()) {
      const file = path.join(this.dir, segmentFileName(number));
      const last = i === numbers.length - 1;
      const segment = this.addSegment(number, file);
      if (!last) {
        segment.sealed = true;
        // Read-only beside a live writer: hold the version of the file that is read now, so a
        // compaction replacing it later cannot move records under the index.
        if (this.readOnly) segment.fd = await this.io.run('openFile', { file, flags: 'r' });
        const loaded = indexed.has(indexFileName(number)) ? await this.loadIndex(segment) : undefined;
        if (loaded) {
          contents.push(loaded);
          segment.end = loaded.end;
          continue;
        }
        const { scan } = this.readOnly
          ? { scan: await this.io.run('scanSegmentFd', { fd: segment.fd!, segment: number }) }
          : await this.io.run('sealSegment', {
              dir: this.dir,
              file,
              indexFile: path.join(this.dir, indexFileName(number)),
              segment: number,
              sync: this.fsync,
            });
        if (scan.badHeader) throw this.corruptFile(file, 0, scan.badHeader);
        segment.end = scan.end;
        // Bad bytes at the end of a sealed segment were followed by the next segment: not a torn write.
        if (scan.torn) scan.problems.push({ offset: scan.torn.offset, reason: scan.torn.reason });
        if (scan.problems.length > 0) {
          segment.problems = true;
          problemsFound.push({ file, scan });
        }
        contents.push(scan);
        continue;
      }
      contents.push(await this.openActive(segment, problemsFound));
    }
    if (!this.readOnly && (this.segments.size === 0 || this.active === undefined))
      await this.createActive(1 + (numbers.at(-1) ?? 0));

    // Marks first (the newest of each id wins), so that runs wholly below them are skipped as they load.
    for (const c of contents) {
      for (let m = 0; m < c.marks.length; m += 2) {
        const id = c.ids[c.marks[m]!]!;
        marks.set(id, Math.max(marks.get(id) ?? 1, c.marks[m + 1]!));
      }
    }
    for (const [id, mark] of marks) this.entry(id).lowWater = mark;
    // Repairs take effect in log order: each when the runs reach the segment it began.
    const pendingRepairs = [...this.repairs].sort((a, b) => a.since - b.since);
    const applyRepairsBefore = (segment: number) => {
      while (pendingRepairs.length > 0 && pendingRepairs[0]!.since <= segment) {
        this.applyRepair(pendingRepairs.shift()!);
      }
    };
    for (const c of contents) {
      applyRepairsBefore(c.segment);
      const file = path.join(this.dir, segmentFileName(c.segment));
      for (let r = 0; r < c.runs.length; r += 5) {
        const id = c.ids[c.runs[r]!]!;
        const entry = this.entry(id);
        const [offset, byteLength, first, count] = [
          c.runs[r + 1]!,
          c.runs[r + 2]!,
          c.runs[r + 3]!,
          c.runs[r + 4]!,
        ];
        const wrong = entry.add(c.segment, offset, byteLength, first, count);
        if (wrong !== undefined) {
          this.markCorrupt(entry, {
            sequenceNr: wrong,
            file,
            offset,
            reason:
              wrong < first
                ? `sequenceNr ${wrong} is missing: the next record of the id on file is sequenceNr ${first}`
                : `sequenceNr ${first} is stored twice`,
          });
        }
      }
    }
    applyRepairsBefore(Number.POSITIVE_INFINITY);
    // Records that failed verification: a hole they leave is reported as them, not as a gap (they win
    // ties). Marked after the runs so that those a repair cut off (quarantined) no longer count.
    for (const { file, scan } of problemsFound) {
      const segment = parseSegmentFileName(path.basename(file))!;
      for (const problem of scan.problems) {
        const { persistenceId, sequenceNr } = problem;
        const repaired =
          persistenceId !== undefined &&
          sequenceNr !== undefined &&
          this.repairs.some((r) => r.id === persistenceId && segment < r.since && sequenceNr >= r.first);
        if (persistenceId !== undefined && sequenceNr !== undefined && !repaired) {
          const entry = this.entry(persistenceId);
          if (sequenceNr >= entry.lowWater) {
            this.markCorrupt(
              entry,
              { sequenceNr, file, offset: problem.offset, reason: problem.reason },
              true,
            );
          }
        }
        this.reporter({
          kind: 'corruption-found',
          message:
            `${file}: corrupt data at offset ${problem.offset} (${problem.reason})` +
            (persistenceId === undefined
              ? ''
              : `, probably "${persistenceId}" sequenceNr ${sequenceNr ?? '?'}`) +
            (repaired
              ? '; a repair already cut it off (its bytes are in the quarantine file); nothing was deleted'
              : '; reads of the affected ids stop there; nothing was deleted'),
          ...(persistenceId === undefined ? {} : { persistenceId }),
        });
      }
    }
    for (const entry of this.index.values()) {
      for (const s of entry.segments()) this.segments.get(s)!.liveIds++;
    }
    if (this.readOnly) return;
    this.removeDeadSegments();
    this.scheduleCompaction();
  }

  /** The directory's entries for a read-only open, which never creates it. */
  private async listReadOnly(): Promise<string[]> {
    try {
      return await this.io.run('listDirectory', { dir: this.dir });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      throw new StorageError(
        `no journal at ${this.dir}: the directory does not exist (a read-only open creates nothing)`,
        {
          cause: e,
        },
      );
    }
  }

  /** Creates the directory when missing and takes its lock; returns its entries. */
  private async lockDirectory(): Promise<string[]> {
    await this.io.run('prepareDirectory', { dir: this.dir });
    this.lock = await JournalLock.acquire(this.dir, this.lockStaleMs, this.reporter, (error) => {
      this.failure = new StorageError(
        `lost the lock of ${this.dir} (another process may have taken it): ${error.message}; reopen the journal`,
        { cause: error },
      );
      this.reporter({ kind: 'lock-lost', message: this.failure.message, error: this.failure });
    });
    return this.io.run('prepareDirectory', { dir: this.dir });
  }

  /**
   * Applies one repair to the in-memory index: the id's events from `first` on are forgotten. On open
   * it runs when the runs reach segment `since`, so events appended after the repair are added after it.
   */
  private applyRepair(repair: RepairEntry): void {
    const entry = this.entry(repair.id);
    if (entry.cutBack(repair.first, repair.cut)) return;
    // A run holds records on both sides of the cut, but not where the repair recorded: serve nothing
    // past the last good record rather than dead records.
    this.markCorrupt(entry, {
      sequenceNr: repair.first,
      file: path.join(this.dir, segmentFileName(repair.cut?.segment ?? repair.since)),
      offset: repair.cut?.offset ?? 0,
      reason: `a repair cut the id back before sequenceNr ${repair.first}, but the record that starts the cut is not where the repair found it`,
    });
  }

  private addSegment(number: number, file: string): Segment {
    const segment: Segment = {
      number,
      file,
      fd: undefined,
      opening: undefined,
      end: 0,
      sealed: false,
      liveIds: 0,
      problems: false,
      readers: 0,
      deleted: false,
      replaced: false,
    };
    this.segments.set(number, segment);
    return segment;
  }

  private async loadCheckpoint(): Promise<Checkpoint | undefined> {
    const file = path.join(this.dir, CHECKPOINT_FILE);
    const bytes = await this.io.run('readFileIfExists', { file });
    if (bytes === undefined) return undefined;
    const decoded = decodeCheckpoint(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    if ('reason' in decoded) throw this.corruptFile(file, 0, decoded.reason);
    return decoded;
  }

  /**
   * Every segment the log should have: those the checkpoint lists and every later number (segments are
   * numbered consecutively and only this journal deletes them, after saying so in the checkpoint). One
   * missing was lost outside the journal: its events cannot be served, and which ids they belong to is
   * unknown, so the journal refuses to open rather than serve histories with holes.
   */
  private checkSegmentsPresent(numbers: readonly number[], checkpoint: Checkpoint | undefined): void {
    const present = new Set(numbers);
    const newest = numbers.at(-1) ?? 0;
    const expected = checkpoint ? [...checkpoint.segments] : [];
    for (let n = (checkpoint?.through ?? 0) + 1; n <= newest; n++) expected.push(n);
    const missing = expected.filter((n) => !present.has(n) && n <= newest);
    if (missing.length > 0) {
      const file = path.join(this.dir, segmentFileName(missing[0]!));
      throw this.corruptFile(
        file,
        0,
        `segment ${missing.map(segmentFileName).join(', ')} is missing, but this journal never deleted it; ` +
          'restore it from a backup (the events in it cannot be served)',
      );
    }
  }

  /** The sealed segment's sidecar index, or undefined when it is missing, bad or stale (then it is rescanned). */
  private async loadIndex(segment: Segment): Promise<SegmentContents | undefined> {
    const indexFile = path.join(this.dir, indexFileName(segment.number));
    const { bytes, size } =
      segment.fd !== undefined
        ? await this.io.run('readIndexFd', { indexFile, fd: segment.fd })
        : await this.io.run('readIndex', { indexFile, file: segment.file });
    if (!bytes) return undefined;
    const decoded = decodeIndex(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      segment.number,
    );
    // An index of another version of the segment (a crash mid-compaction) does not match its size.
    return 'reason' in decoded || decoded.end !== size ? undefined : decoded;
  }

  /** Opens the last segment for appending: scans it and cuts a torn tail back to the last whole frame. */
  private async openActive(
    segment: Segment,
    problemsFound: Array<{ file: string; scan: SegmentScan }>,
  ): Promise<SegmentContents> {
    if (this.readOnly) return this.openActiveReadOnly(segment, problemsFound);
    const scan = await this.io.run('scanSegment', { file: segment.file, segment: segment.number });
    if (scan.badHeader) {
      if (scan.size >= SEGMENT_HEADER_SIZE) throw this.corruptFile(segment.file, 0, scan.badHeader);
      // A crash while the segment was being created: nothing was ever written to it.
      await this.io.run('removeFiles', { dir: this.dir, files: [segment.file], sync: this.fsync });
      this.segments.delete(segment.number);
      await this.createActive(segment.number);
      return emptyContents(segment.number);
    }
    segment.fd = await this.io.run('openFile', { file: segment.file, flags: 'r+' });
    if (scan.torn) {
      await this.io.run('truncateFile', { fd: segment.fd, length: scan.end, sync: this.fsync });
      this.reporter({
        kind: 'torn-tail-repaired',
        message:
          `${segment.file}: cut back ${scan.size - scan.end} bytes from offset ${scan.end} ` +
          `(${scan.torn.reason} at offset ${scan.torn.offset}): a commit torn by a crash, never acknowledged ` +
          'with fsync on; every whole commit before it is kept',
      });
    }
    return this.adoptActive(segment, scan, problemsFound);
  }

  /**
   * The last segment, read as it is now, changing nothing: a partial last frame (a live writer's commit
   * in progress, or one torn by a crash) is left out and reported, never cut.
   */
  private async openActiveReadOnly(
    segment: Segment,
    problemsFound: Array<{ file: string; scan: SegmentScan }>,
  ): Promise<SegmentContents> {
    segment.fd = await this.io.run('openFile', { file: segment.file, flags: 'r' });
    const scan = await this.io.run('scanSegmentFd', { fd: segment.fd, segment: segment.number });
    if (scan.badHeader) {
      if (scan.size >= SEGMENT_HEADER_SIZE) throw this.corruptFile(segment.file, 0, scan.badHeader);
      // Being created by a writer (or left empty by a crash while it was): nothing is in it yet.
      return emptyContents(segment.number);
    }
    if (scan.torn) {
      this.reporter({
        kind: 'torn-tail-ignored',
        message:
          `${segment.file}: the last ${scan.size - scan.end} bytes from offset ${scan.end} are not a whole commit ` +
          `(${scan.torn.reason} at offset ${scan.torn.offset}): a commit being written, or torn by a crash; ` +
          'not read, and left as it is (read-only)',
      });
    }
    return this.adoptActive(segment, scan, problemsFound);
  }

  /** Makes the scanned last segment the one appends go to, noting any corruption the scan found in it. */
  private adoptActive(
    segment: Segment,
    scan: SegmentScan,
    problemsFound: Array<{ file: string; scan: SegmentScan }>,
  ): SegmentContents {
    if (scan.problems.length > 0) {
      segment.problems = true;
      problemsFound.push({ file: segment.file, scan });
    }
    segment.end = scan.end;
    this.active = segment;
    return scan;
  }

  private async createActive(number: number): Promise<Segment> {
    const file = path.join(this.dir, segmentFileName(number));
    const fd = await this.io.run('createSegment', {
      dir: this.dir,
      file,
      header: encodeSegmentHeader(number),
      sync: true, // always: see FileMessageJournalOptions.fsync
    });
    const segment = this.addSegment(number, file);
    segment.fd = fd;
    segment.end = SEGMENT_HEADER_SIZE;
    this.active = segment;
    return segment;
  }

  private entry(persistenceId: string): IdIndex {
    let entry = this.index.get(persistenceId);
    if (!entry) {
      entry = new IdIndex();
      this.index.set(persistenceId, entry);
    }
    return entry;
  }

  /** Keeps the lowest corrupt point of the id; `winsTies`: replaces one at the same sequenceNr. */
  private markCorrupt(entry: IdIndex, point: CorruptPoint, winsTies = false): void {
    if (point.sequenceNr < entry.lowWater) return; // truncated: never read
    const current = entry.corrupt?.sequenceNr;
    if (current === undefined || point.sequenceNr < current || (winsTies && point.sequenceNr === current))
      entry.corrupt = point;
  }

  private corruptFile(file: string, offset: number, reason: string): JournalCorruptedError {
    return new JournalCorruptedError({ file, offset, reason });
  }

  // ---- writing ----

  /**
   * Writes are refused with ReadOnlyError when opened read-only. While the id is being repaired, a write
   * waits for the repair (and is numbered after the kept records); its messages were serialized at the
   * call, so changing them afterwards changes nothing.
   */
  protected override writeGate(persistenceId: string, operation: string): Promise<void> | undefined {
    this.refuseWhenReadOnly(operation);
    return this.repairing.get(persistenceId);
  }

  /** Rejects with ReadOnlyError when opened read-only; waits for a repair of the id; otherwise as AbstractMessageJournal. */
  override async truncateBefore(persistenceId: string, sequenceNr: number): Promise<void> {
    this.refuseWhenReadOnly('truncateBefore');
    await this.repairing.get(persistenceId);
    return super.truncateBefore(persistenceId, sequenceNr);
  }

  private refuseWhenReadOnly(operation: string): void {
    if (this.readOnly && !this.closed)
      throw new ReadOnlyError(this.path, `${operation} refused, nothing written`);
  }

  protected async _write(writes: readonly JournalWrite[]): Promise<void> {
    if (this.readOnly) throw new ReadOnlyError(this.path, 'write refused, nothing written');
    const frame = encodeFrame(writes);
    await this.commitFrame(frame, (segment, position) => {
      frame.parts.forEach((part, i) => {
        const { events } = writes[i]!;
        const entry = this.entry(part.persistenceId);
        const before = entry.runCount > 0 ? entry.segmentOf(entry.runCount - 1) : -1;
        entry.add(segment, position + part.offset, part.byteLength, events[0]!.sequenceNr, events.length);
        if (before !== segment) this.segments.get(segment)!.liveIds++;
      });
    });
  }

  protected async _truncateBefore(persistenceId: string, sequenceNr: number, highest: number): Promise<void> {
    if (this.readOnly) throw new ReadOnlyError(this.path, 'truncateBefore refused, nothing written');
    const entry = this.entry(persistenceId);
    const mark = Math.min(sequenceNr, highest + 1);
    if (mark <= entry.lowWater) return;
    await this.commitFrame(encodeFrame([{ persistenceId, lowWater: mark }]), () => {
      for (const s of entry.raiseLowWater(mark)) {
        const segment = this.segments.get(s);
        if (segment) segment.liveIds--;
      }
    });
    this.removeDeadSegments();
    this.scheduleCompaction();
  }

  /** A low-water mark record for an id that never had events: its highest reads `highest` from then on. */
  protected override async _startAfter(persistenceId: string, highest: number): Promise<void> {
    if (this.readOnly) throw new ReadOnlyError(this.path, 'write refused, nothing written');
    const entry = this.entry(persistenceId);
    if (entry.highest !== 0) throw new SequenceConflictError(persistenceId, 0, entry.highest);
    await this.commitFrame(encodeFrame([{ persistenceId, lowWater: highest + 1 }]), () => {
      entry.raiseLowWater(highest + 1);
    });
  }

  /** Appends one frame to the log (rolling to a new segment first when it would overflow), one at a time. */
  private commitFrame(
    frame: EncodedFrame,
    applied: (segment: number, position: number) => void,
  ): Promise<void> {
    const commit = async () => {
      if (this.failure) throw this.failure;
      const length = frame.bytes.byteLength;
      let segment = this.active;
      if (segment.end > SEGMENT_HEADER_SIZE && segment.end + length > this.segmentSize)
        segment = await this.roll();
      const position = segment.end;
      const fd = segment.fd!;
      try {
        // Handed over, not copied: the frame owns its ArrayBuffer (encodeFrame allocates it unpooled).
        await this.io.run('appendFrame', { fd, bytes: frame.bytes, position, sync: this.fsync }, true);
      } catch (e) {
        await this.undoWrite(fd, position, e);
        throw e;
      }
      segment.end = position + length;
      applied(segment.number, position);
    };
    const done = this.writing.then(commit);
    this.writing = done.catch(() => undefined);
    return done;
  }

  /**
   * A failed write or sync leaves an unknown part of the frame on disk: cut it off before anything is
   * written after it, or stop writing (a later frame behind half a frame would read as corruption).
   */
  private async undoWrite(fd: number, position: number, error: unknown): Promise<void> {
    try {
      await this.io.run('truncateFile', { fd, length: position, sync: this.fsync });
    } catch (e) {
      this.failure = new StorageError(
        `a failed commit (${(error as Error)?.message ?? error}) could not be undone ` +
          `(${(e as Error)?.message ?? e}); the journal accepts no more writes: reopen it`,
        { cause: e },
      );
    }
  }

  private async roll(): Promise<Segment> {
    const sealed = this.active;
    const next = await this.createActive(sealed.number + 1);
    sealed.sealed = true;
    this.inBackground(async () => {
      const { indexed, scan } = await this.io.run('sealSegment', {
        dir: this.dir,
        file: sealed.file,
        indexFile: path.join(this.dir, indexFileName(sealed.number)),
        segment: sealed.number,
        sync: this.fsync,
      });
      if (!indexed && !sealed.deleted) {
        sealed.problems = true;
        const where = scan.badHeader ?? scan.torn?.reason ?? scan.problems[0]?.reason;
        this.reporter({
          kind: 'corruption-found',
          message: `${sealed.file}: sealing found corrupt data (${where}); the segment is kept and rescanned on open`,
        });
      }
      // Everything in it may have been truncated before it was sealed.
      this.removeDeadSegments();
    });
    return next;
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
    if (this.repairing.has(persistenceId)) {
      throw new RepairRefusedError(persistenceId, 'a repair of it is already running');
    }
    let finished!: () => void;
    this.repairing.set(
      persistenceId,
      new Promise<void>((resolve) => {
        finished = resolve;
      }),
    );
    try {
      // Appends issued before this call settle first; later ones wait (see writeGate).
      const highest = await this.highestSequenceNr(persistenceId);
      const failure = await this.firstUnreadable(persistenceId);
      if (!failure) {
        throw new RepairRefusedError(
          persistenceId,
          highest === 0
            ? 'it has no events'
            : `it reads back clean through sequenceNr ${highest}: there is nothing to cut`,
        );
      }
      return await this.cutAfterCorruption(persistenceId, failure);
    } finally {
      this.repairing.delete(persistenceId);
      finished();
    }
  }

  /** The read failure that stops the id, or undefined when every event reads back (and decodes). */
  private async firstUnreadable(
    persistenceId: string,
  ): Promise<(JournalCorruptedError & { sequenceNr: number }) | undefined> {
    try {
      for await (const _ of this.readFrom(persistenceId, 1)) {
        // Read to the end: every record verified and decoded.
      }
      return undefined;
    } catch (e) {
      if (
        isPersistenceError(e, 'ERR_JOURNAL_CORRUPTED') &&
        (e as JournalCorruptedError).persistenceId === persistenceId &&
        (e as JournalCorruptedError).sequenceNr !== undefined
      ) {
        return e as JournalCorruptedError & { sequenceNr: number };
      }
      throw e;
    }
  }

  private async cutAfterCorruption(
    persistenceId: string,
    failure: JournalCorruptedError & { sequenceNr: number },
  ): Promise<CorruptionRepair> {
    const entry = this.index.get(persistenceId)!;
    const first = failure.sequenceNr;
    const { ranges, cut } = await this.deadRanges(persistenceId, entry, first, failure);
    const last = Math.max(entry.top, first);
    const at = Date.now();
    const name = `${new Date(at).toISOString().replace(/[:.]/g, '-')}-${quarantineName(persistenceId)}.records`;
    const quarantine = path.join(this.dir, QUARANTINE_DIR, name);
    const parts: Buffer[] = [];
    for (const range of ranges) {
      parts.push(
        await this.readSegment(range.segment, range.offset, range.length, persistenceId, range.first),
      );
    }
    const bytes = parts.reduce((n, p) => n + p.length, 0);
    const header = {
      format: 'cairn-quarantine/1',
      what:
        `records of "${persistenceId}" that repairAfterCorruption cut off (sequenceNr ${first}..${last}), ` +
        'copied byte for byte from the journal segments, in the record layout of src/record-codec.ts; ' +
        'the ranges follow this line back to back, in the order listed',
      persistenceId,
      journal: this.dir,
      keptThrough: first - 1,
      removed: { first, last },
      reason: failure.message,
      repairedAt: new Date(at).toISOString(),
      ranges: ranges.map((r) => ({
        file: r.segment.file,
        offset: r.offset,
        length: r.length,
        sequenceNrs: r.first === r.last ? `${r.first}` : `${r.first}..${r.last}`,
        ...(r.note ? { note: r.note } : {}),
      })),
      bytes,
    };
    await this.io.run('writeQuarantine', {
      dir: this.dir,
      file: quarantine,
      bytes: Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`, 'utf8'), ...parts]),
    });

    // The cut itself: one commit in the log's order, while no maintenance rewrites the checkpoint.
    const maintenanceBefore = this.maintenance;
    const commit = async () => {
      if (this.failure) throw this.failure;
      await maintenanceBefore;
      // Events of the id appended from now on go to a segment begun after the repair (see RepairEntry).
      const since = this.active.end > SEGMENT_HEADER_SIZE ? (await this.roll()).number : this.active.number;
      const repair: RepairEntry = {
        id: persistenceId,
        first,
        last,
        since,
        ...(cut ? { cut } : {}),
        quarantine: path.join(QUARANTINE_DIR, name),
        at,
      };
      this.repairs.push(repair);
      try {
        await this.writeCheckpoint();
      } catch (e) {
        this.repairs = this.repairs.filter((r) => r !== repair);
        throw e;
      }
      const before = entry.segments();
      this.applyRepair(repair);
      const after = new Set(entry.segments());
      for (const s of before) {
        const segment = this.segments.get(s);
        if (segment && !after.has(s)) segment.liveIds--;
      }
      this.served.delete(persistenceId);
      this.forgetSequenceState(persistenceId);
    };
    const done = this.writing.then(commit);
    this.writing = done.catch(() => undefined);
    this.maintenance = this.maintenance.then(() => done.then(settledQuietly, settledQuietly));
    await done;
    this.removeDeadSegments();
    this.scheduleCompaction();
    return {
      keptThrough: first - 1,
      removed: { first, last },
      quarantine,
      bytes,
      reason: failure.message,
    };
  }

  /**
   * The bytes of the id from record `first` on: the rest of the run holding it (found by stepping over
   * the good records before it), every later run, and the damaged record itself when the index does not
   * hold it (a scan left it out).
   */
  private async deadRanges(
    persistenceId: string,
    entry: IdIndex,
    first: number,
    failure: JournalCorruptedError,
  ): Promise<{ ranges: DeadRange[]; cut: { segment: number; offset: number } | undefined }> {
    const ranges: DeadRange[] = [];
    let cut: { segment: number; offset: number } | undefined;
    const idBytes = Buffer.from(persistenceId, 'utf8');
    let r = entry.findRun(first);
    if (r < entry.runCount && entry.firstOf(r) < first) {
      const segment = this.segments.get(entry.segmentOf(r))!;
      const offset = entry.offsetOf(r);
      const length = entry.byteLengthOf(r);
      const bytes = await this.readSegment(segment, offset, length, persistenceId, entry.firstOf(r));
      let at = 0;
      for (let seq = entry.firstOf(r); seq < first; seq++) {
        const record = decodeRecord(bytes, at, length, idBytes);
        if (isBadRecord(record)) {
          throw new StorageError(
            `${segment.file}: record ${seq} of "${persistenceId}" at offset ${offset + at} read back good a moment ago and is now bad (${record.reason}); nothing was changed`,
          );
        }
        at += record.length;
      }
      cut = { segment: segment.number, offset: offset + at };
      // at === length: record `first` is not in this run (a hole follows it); nothing of it is cut.
      if (at < length) {
        ranges.push({ segment, offset: offset + at, length: length - at, first, last: entry.lastOf(r) });
      }
      r++;
    }
    for (; r < entry.runCount; r++) {
      const segment = this.segments.get(entry.segmentOf(r));
      if (!segment) continue; // a segment that is gone: nothing of it to keep (reads named it)
      const runFirst = entry.firstOf(r);
      ranges.push({
        segment,
        offset: entry.offsetOf(r),
        length: entry.byteLengthOf(r),
        first: runFirst,
        last: entry.lastOf(r),
      });
    }
    // A record the scan could not verify is not in any run: keep its bytes too, as far as they go.
    const number = failure.file ? parseSegmentFileName(path.basename(failure.file)) : undefined;
    const damaged = number === undefined ? undefined : this.segments.get(number);
    const offset = failure.offset;
    if (
      damaged &&
      offset !== undefined &&
      offset >= SEGMENT_HEADER_SIZE &&
      offset < damaged.end &&
      !ranges.some((g) => g.segment === damaged && offset >= g.offset && offset < g.offset + g.length)
    ) {
      const header = await this.readSegment(
        damaged,
        offset,
        Math.min(RECORD_HEADER_SIZE, damaged.end - offset),
        persistenceId,
        first,
      );
      const next = ranges.find((g) => g.segment === damaged && g.offset > offset)?.offset ?? damaged.end;
      const stated = header.length >= 4 ? header.readUInt32LE(0) : 0;
      const known = stated >= RECORD_HEADER_SIZE && offset + stated <= next;
      const length = known ? stated : Math.min(next - offset, QUARANTINE_UNKNOWN_EXTENT);
      ranges.push({
        segment: damaged,
        offset,
        length,
        first,
        last: first,
        note: known
          ? 'the damaged record, by the length its header states'
          : 'damaged bytes whose extent is unknown: up to the next record of the id, at most 64 KiB; may hold bytes of other ids',
      });
      ranges.sort((a, b) => a.segment.number - b.segment.number || a.offset - b.offset);
    }
    return { ranges, cut };
  }

  // ---- background maintenance ----

  private inBackground(task: () => Promise<void>): void {
    this.maintenance = this.maintenance.then(task).catch((e: unknown) => {
      this.reporter({
        kind: 'maintenance-failed',
        message: `${this.dir}: background maintenance failed: ${(e as Error)?.message ?? e}; retried later`,
      });
    });
  }

  /** Deletes sealed segments that hold no live event, after saving every low-water mark to the checkpoint. */
  private removeDeadSegments(): void {
    const isDead = (s: Segment) =>
      s.sealed && s !== this.active && s.liveIds <= 0 && !s.problems && !s.deleted;
    if (![...this.segments.values()].some(isDead)) return;
    this.inBackground(async () => {
      const dead = [...this.segments.values()].filter(isDead);
      if (dead.length === 0) return;
      await this.writeCheckpoint(dead);
      for (const s of dead) {
        s.deleted = true;
        this.segments.delete(s.number);
      }
      await this.io.run('removeFiles', {
        dir: this.dir,
        files: dead.flatMap((s) => [s.file, path.join(this.dir, indexFileName(s.number))]),
        sync: this.fsync,
      });
      for (const s of dead) this.closeWhenUnread(s);
    });
  }

  /**
   * Saves every low-water mark and the segments that will exist, before segments (which may hold mark
   * records) are deleted (`deleting`) or rewritten.
   */
  private async writeCheckpoint(deleting: readonly Segment[] = []): Promise<void> {
    const marks: Array<[string, number]> = [];
    for (const [id, entry] of this.index) if (entry.lowWater > 1) marks.push([id, entry.lowWater]);
    const segments = [...this.segments.keys()].filter((n) => !deleting.some((d) => d.number === n));
    // A repair matters while a segment older than the one it began may hold the records it cut.
    const oldest = Math.min(...segments);
    this.repairs = this.repairs.filter((r) => r.since > oldest);
    await this.io.run('replaceFile', {
      dir: this.dir,
      file: path.join(this.dir, CHECKPOINT_FILE),
      bytes: encodeCheckpoint({
        marks,
        segments: segments.sort((a, b) => a - b),
        through: this.active.number,
        ...(this.repairs.length > 0 ? { repairs: this.repairs } : {}),
      }),
      sync: true, // always: see FileMessageJournalOptions.fsync
    });
  }

  /**
   * Compacts now: deletes sealed segments with no live event and rewrites those whose live events fill
   * less than half of them, then resolves. The journal does this on its own in the background after
   * truncations and on open (a close in progress skips it); call this to reclaim space at a moment of
   * your choosing, e.g. after a bulk truncation. Appends and reads go on meanwhile.
   */
  async compact(): Promise<void> {
    this.checkOpen();
    this.refuseWhenReadOnly('compact');
    this.removeDeadSegments();
    this.scheduleCompaction(true);
    await this.maintenance;
  }

  /**
   * Queues a look for sparse segments: once, however many truncations ask before it runs, and (unless
   * `now`) at most every COMPACTION_INTERVAL_MS, since the look walks the whole index on the main thread.
   */
  private scheduleCompaction(now = false): void {
    if (this.compactionQueued) return;
    if (!now && performance.now() - this.lastCompaction < COMPACTION_INTERVAL_MS) return;
    this.compactionQueued = true;
    this.inBackground(async () => {
      this.compactionQueued = false;
      this.lastCompaction = performance.now();
      const live = new Map<number, number>();
      for (const entry of this.index.values()) entry.liveBytes(live);
      const sparse = [...this.segments.values()].filter(
        (s) =>
          s.sealed &&
          s !== this.active &&
          !s.problems &&
          !s.deleted &&
          s.liveIds > 0 &&
          (live.get(s.number) ?? 0) < COMPACT_BELOW * (s.end - SEGMENT_HEADER_SIZE),
      );
      for (const segment of sparse) {
        if (this.closed) return;
        await this.compactSegment(segment);
      }
    });
  }

  /**
   * Rewrites a sealed segment with only its live events (record bytes copied as they are, checksums
   * included), under the same number, so the log's order and every id's sequence order stay as they
   * were. Appends never wait for it; reads in flight finish on the old file's open descriptor.
   */
  private async compactSegment(segment: Segment): Promise<void> {
    const old = await this.readSegment(segment, 0, segment.end, '', 0).catch(() => undefined);
    if (!old || old.length === 0 || segment.deleted) return;
    const frames: Buffer[] = [encodeSegmentHeader(segment.number)];
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    for (const [id, entry] of this.index) {
      const idBytes = Buffer.from(id, 'utf8');
      for (let r = 0; r < entry.runCount; r++) {
        if (entry.segmentOf(r) !== segment.number || entry.lastOf(r) < entry.lowWater) continue;
        let at = entry.offsetOf(r);
        const end = at + entry.byteLengthOf(r);
        while (at < end) {
          const record = decodeRecord(old, at, end, idBytes);
          if (isBadRecord(record)) {
            segment.problems = true;
            this.reporter({
              kind: 'corruption-found',
              message: `${segment.file}: compaction found a bad record at offset ${at} (${record.reason}); the segment is kept as it is`,
              persistenceId: id,
            });
            return;
          }
          if (record.sequenceNr >= entry.lowWater) {
            pending.push(old.subarray(at, at + record.length));
            pendingBytes += record.length;
            if (pendingBytes >= COMPACT_FRAME_BYTES) {
              frames.push(encodeRawFrame(pending));
              pending = [];
              pendingBytes = 0;
            }
          }
          at += record.length;
        }
      }
    }
    if (pending.length > 0) frames.push(encodeRawFrame(pending));
    await this.writeCheckpoint();
    const bytes = Buffer.concat(frames);
    const { installed, scan } = await this.io.run(
      'installSegment',
      {
        dir: this.dir,
        file: segment.file,
        indexFile: path.join(this.dir, indexFileName(segment.number)),
        segment: segment.number,
        bytes,
        sync: true, // always: see FileMessageJournalOptions.fsync
      },
      true,
    );
    if (!installed) {
      segment.problems = true;
      this.reporter({
        kind: 'maintenance-failed',
        message: `${segment.file}: its compacted copy did not verify; the segment is kept as it is`,
      });
      return;
    }
    const fresh = this.addSegment(segment.number, segment.file);
    fresh.sealed = true;
    fresh.end = scan.end;
    fresh.liveIds = segment.liveIds;
    segment.deleted = true;
    segment.replaced = true;
    this.closeWhenUnread(segment);
    const runsById = new Map<string, Array<[number, number, number]>>();
    for (let r = 0; r < scan.runs.length; r += 5) {
      const id = scan.ids[scan.runs[r]!]!;
      const runs = runsById.get(id) ?? [];
      runs.push([scan.runs[r + 1]!, scan.runs[r + 2]!, scan.runs[r + 3]!]);
      runsById.set(id, runs);
    }
    for (const [id, runs] of runsById) {
      // 0: everything copied was truncated meanwhile; -1: the truncation already counted it.
      if (this.index.get(id)?.replaceSegmentRuns(segment.number, runs) === 0) fresh.liveIds--;
    }
    if (fresh.liveIds <= 0) this.removeDeadSegments();
  }

  private closeWhenUnread(segment: Segment): void {
    if (segment.readers > 0 || segment.fd === undefined) return;
    const fd = segment.fd;
    segment.fd = undefined;
    closeFd(fd, () => undefined);
  }

  // ---- reading ----

  protected async _highestSequenceNr(persistenceId: string): Promise<number> {
    return this.index.get(persistenceId)?.highest ?? 0;
  }

  protected async *_persistenceIds(): AsyncGenerator<string> {
    for (const [id, entry] of this.index) if (entry.highest > 0) yield id;
  }

  protected async *_read(
    persistenceId: string,
    fromSequenceNr: number,
    toSequenceNr: number,
    max: number,
  ): AsyncGenerator<StoredEvent[]> {
    const entry = this.index.get(persistenceId);
    if (!entry) return;
    const idBytes = Buffer.from(persistenceId, 'utf8');
    let next = fromSequenceNr;
    let left = max;
    // The chunk after the one being served is read while the consumer works through the current one.
    let prefetched: { chunk: ReadChunk; bytes: Promise<ChunkBytes> } | undefined;
    let located: ServedPage | undefined;
    try {
      while (left > 0 && next <= toSequenceNr) {
        next = Math.max(next, entry.lowWater);
        if (entry.corrupt && next >= entry.corrupt.sequenceNr)
          throw this.corruptAt(persistenceId, entry.corrupt);
        const chunk = this.planRead(entry, next, toSequenceNr);
        if (!chunk) return;
        let read: ChunkBytes;
        if (prefetched && sameChunk(prefetched.chunk, chunk)) {
          read = await prefetched.bytes;
        } else {
          prefetched?.bytes.catch(() => undefined);
          read = await this.readChunk(chunk, persistenceId, next);
        }
        prefetched = undefined;
        const { bytes, verifiedTo } = read;
        if (bytes.length === 0 && chunk.stop > chunk.start) {
          // The segment went before it was ever opened. Deleted as dead: every record in it is below
          // its id's mark now. Replaced by its compacted copy: plan again, the index points there now.
          if (!chunk.segment?.replaced) next = Math.max(next, chunk.lastSeq + 1);
          continue;
        }
        const following = this.planRead(entry, chunk.lastSeq + 1, toSequenceNr);
        if (following && left > chunk.events) {
          const read = this.readChunk(following, persistenceId, following.firsts[0]!);
          read.catch(() => undefined); // awaited (and its error seen) only if used
          prefetched = { chunk: following, bytes: read };
        }

        let page: StoredEvent[] = [];
        let offsets: number[] = [];
        let failure: JournalCorruptedError | undefined;
        let served = false;
        runs: for (let r = chunk.firstRun; r <= chunk.lastRun; r++) {
          let at = chunk.offsets[r - chunk.firstRun]! - chunk.start;
          const end = at + chunk.lengths[r - chunk.firstRun]!;
          let expected = chunk.firsts[r - chunk.firstRun]!;
          while (at < end) {
            const sequenceNr = expected;
            // Past what was asked for, or at a record already known bad: not even looked at (a damaged
            // record after `toSequenceNr` in the same batch does not fail this read).
            if (sequenceNr > toSequenceNr || left === 0) break runs;
            if (entry.corrupt && sequenceNr >= entry.corrupt.sequenceNr) break runs;
            // Records below verifiedTo were checked by the IO thread that read them: step over them by
            // their length (bounds still checked, so a bug cannot run the loop off the run).
            const stated = at < verifiedTo ? bytes.readUInt32LE(at) : 0;
            const length =
              at < verifiedTo && stated >= RECORD_HEADER_SIZE + idBytes.length && at + stated <= end
                ? stated
                : intactEventLength(bytes, at, end, idBytes, sequenceNr);
            if (length < 0) {
              const point = {
                sequenceNr,
                file: chunk.file,
                offset: chunk.start + at,
                reason: whyNotIntact(bytes, at, end, idBytes, sequenceNr),
              };
              // Remembered, as if the open had found it: later reads from beyond it are refused too.
              this.markCorrupt(entry, point);
              failure = this.corruptAt(persistenceId, point);
              break runs;
            }
            const start = at;
            at += length;
            expected++;
            // Re-checked per record: a truncation may land while the consumer holds a page.
            if (sequenceNr < next || sequenceNr < entry.lowWater) continue;
            page.push(
              new StoredEventInBuffer(
                sequenceNr,
                bytes.readDoubleLE(start + 24),
                bytes[start + 10]! | (bytes[start + 11]! << 8),
                bytes,
                start + RECORD_HEADER_SIZE + idBytes.length,
                at,
              ),
            );
            offsets.push(chunk.start + start);
            left--;
            next = sequenceNr + 1;
            if (page.length === PAGE_EVENTS) {
              served = true;
              located = this.locatePage(persistenceId, chunk.file, page, offsets);
              yield page;
              page = [];
              offsets = [];
            }
          }
        }
        if (page.length > 0) {
          served = true;
          located = this.locatePage(persistenceId, chunk.file, page, offsets);
          yield page;
        }
        if (failure) throw failure;
        // Nothing servable in these runs (all below `next`): move past them.
        if (!served) next = Math.max(next, chunk.lastSeq + 1);
      }
    } finally {
      prefetched?.bytes.catch(() => undefined);
      if (located && this.served.get(persistenceId) === located) this.served.delete(persistenceId);
    }
  }

  /** Remembers where a page's records are, so a payload that fails to decode is named exactly. */
  private locatePage(
    persistenceId: string,
    file: string,
    page: StoredEvent[],
    offsets: number[],
  ): ServedPage {
    const served = { file, first: page[0]!.sequenceNr, offsets };
    this.served.set(persistenceId, served);
    return served;
  }

  /**
   * The runs to read next for an id, from the one holding `from`: neighbouring runs of one segment
   * (gaps under READ_GAP, at most READ_CHUNK bytes), copied out of the index so a truncation meanwhile
   * cannot shift them.
   */
  private planRead(entry: IdIndex, from: number, to: number): ReadChunk | undefined {
    if (from > to || from > entry.top) return undefined;
    const firstRun = entry.findRun(Math.max(from, entry.lowWater));
    if (firstRun >= entry.runCount) return undefined;
    const number = entry.segmentOf(firstRun);
    const segment = this.segments.get(number);
    const start = entry.offsetOf(firstRun);
    const offsets = [start];
    const lengths = [entry.byteLengthOf(firstRun)];
    const firsts = [entry.firstOf(firstRun)];
    let stop = start + lengths[0]!;
    let lastRun = firstRun;
    while (lastRun + 1 < entry.runCount && entry.segmentOf(lastRun + 1) === number) {
      const offset = entry.offsetOf(lastRun + 1);
      const end = offset + entry.byteLengthOf(lastRun + 1);
      if (offset < stop || offset - stop > READ_GAP || end - start > READ_CHUNK) break;
      if (entry.firstOf(lastRun + 1) > to) break;
      lastRun++;
      stop = end;
      offsets.push(offset);
      lengths.push(end - offset);
      firsts.push(entry.firstOf(lastRun));
    }
    const lastSeq = entry.lastOf(lastRun);
    return {
      segment,
      file: segment?.file ?? path.join(this.dir, segmentFileName(number)),
      start,
      stop,
      firstRun,
      lastRun,
      offsets,
      lengths,
      firsts,
      lastSeq,
      events: lastSeq - firsts[0]! + 1,
    };
  }

  /**
   * Reads a chunk's bytes. A large one (a replay's) is read by an IO thread that also checks its records
   * (`readRuns`), so the checksums run beside the main thread's decoding of the chunk before; a small one
   * (a recovery's few events) is read here and checked record by record as it is served.
   */
  private readChunk(chunk: ReadChunk, persistenceId: string, sequenceNr: number): Promise<ChunkBytes> {
    if (!chunk.segment) {
      return Promise.reject(
        this.corruptAt(persistenceId, {
          sequenceNr,
          file: chunk.file,
          offset: chunk.start,
          reason: 'the segment holding it is gone',
        }),
      );
    }
    const length = chunk.stop - chunk.start;
    const verify =
      length >= VERIFY_OFF_THREAD_BYTES
        ? {
            offsets: chunk.offsets.map((o) => o - chunk.start),
            lengths: chunk.lengths,
            firsts: chunk.firsts,
            id: Buffer.from(persistenceId, 'utf8'),
          }
        : undefined;
    const read = this.readBytes(chunk.segment, chunk.start, length, persistenceId, sequenceNr, verify);
    this.reads.add(read);
    const forget = () => this.reads.delete(read);
    read.then(forget, forget);
    return read;
  }

  private corruptAt(persistenceId: string, point: CorruptPoint): JournalCorruptedError {
    return new JournalCorruptedError({
      persistenceId,
      sequenceNr: point.sequenceNr,
      file: point.file,
      offset: point.offset,
      reason: point.reason,
    });
  }

  private async readSegment(
    segment: Segment,
    position: number,
    length: number,
    persistenceId: string,
    sequenceNr: number,
  ): Promise<Buffer> {
    return (await this.readBytes(segment, position, length, persistenceId, sequenceNr, undefined)).bytes;
  }

  /** Reads bytes of a segment; with `verify`, on an IO thread that checks those runs' records too. */
  private async readBytes(
    segment: Segment,
    position: number,
    length: number,
    persistenceId: string,
    sequenceNr: number,
    verify: RunsToVerify | undefined,
  ): Promise<ChunkBytes> {
    // A segment deleted before its first read was never opened: the caller skips it (see _read).
    if (segment.deleted && segment.fd === undefined) return { bytes: Buffer.alloc(0), verifiedTo: 0 };
    segment.readers++;
    try {
      if (segment.fd === undefined) {
        segment.opening ??= this.io.run('openFile', { file: segment.file, flags: 'r' });
        const fd = await segment.opening;
        segment.opening = undefined;
        segment.fd ??= fd;
        if (segment.fd !== fd) closeFd(fd, () => undefined);
      }
      const fd = segment.fd;
      let buffer: Buffer;
      let bytesRead: number;
      let verifiedTo = 0;
      if (verify) {
        // Allocated here and handed over both ways: buffers made on an IO thread and freed here were
        // measured to linger (RSS +78 MiB over a 500,000-event replay, against +8 MiB).
        const into = Buffer.allocUnsafeSlow(length);
        const read = await this.io.run('readRuns', { fd, position, length, ...verify, into }, true);
        buffer = Buffer.from(read.bytes.buffer, read.bytes.byteOffset, read.bytes.byteLength);
        bytesRead = read.bytesRead;
        verifiedTo = read.verifiedTo;
      } else {
        buffer = Buffer.allocUnsafe(length);
        bytesRead = await new Promise<number>((resolve, reject) =>
          read(fd, buffer, 0, length, position, (e, n) => (e ? reject(e) : resolve(n))),
        );
      }
      if (bytesRead < length) {
        throw this.corruptAt(persistenceId, {
          sequenceNr,
          file: segment.file,
          offset: position + bytesRead,
          reason: `the segment ends ${length - bytesRead} bytes short of what the index holds`,
        });
      }
      return { bytes: buffer, verifiedTo };
    } finally {
      segment.readers--;
      if (segment.deleted) this.closeWhenUnread(segment);
    }
  }

  protected override async _lowWaterMark(persistenceId: string): Promise<number> {
    return this.index.get(persistenceId)?.lowWater ?? 1;
  }

  protected override _locate(
    persistenceId: string,
    sequenceNr: number,
  ): Pick<CorruptionLocation, 'file' | 'offset' | 'key'> {
    const page = this.served.get(persistenceId);
    const offset = page?.offsets[sequenceNr - page.first];
    if (page && offset !== undefined) return { file: page.file, offset };
    const entry = this.index.get(persistenceId);
    if (!entry || entry.runCount === 0) return { key: `${persistenceId}#${sequenceNr}` };
    const run = Math.min(entry.findRun(sequenceNr), entry.runCount - 1);
    // Not in a page being served: the offset of the run (the atomic write) holding the record.
    return {
      file: path.join(this.dir, segmentFileName(entry.segmentOf(run))),
      offset: entry.offsetOf(run),
    };
  }

  // ---- closing ----

  protected async _close(): Promise<void> {
    await this.releaseResources();
  }

  private async releaseResources(): Promise<void> {
    await this.writing;
    await this.maintenance;
    await Promise.allSettled([...this.reads]);
    const errors: unknown[] = [];
    for (const segment of this.segments.values()) {
      const fd = segment.opening ? await segment.opening.catch(() => undefined) : undefined;
      for (const d of new Set([segment.fd, fd])) {
        if (d === undefined) continue;
        await new Promise<void>((resolve) =>
          closeFd(d, (e) => {
            if (e) errors.push(e);
            resolve();
          }),
        );
      }
      segment.fd = undefined;
    }
    this.segments.clear();
    await this.io.close().catch((e: unknown) => errors.push(e));
    await this.lock?.release().catch((e: unknown) => {
      // A lock already lost (reported then, and writes refused since) has nothing left to release.
      if ((e as NodeJS.ErrnoException).code !== 'ENOTACQUIRED') errors.push(e);
    });
    this.lock = undefined;
    if (errors.length > 0) {
      throw new StorageError(`closing the journal in ${this.dir} failed: ${String(errors[0])}`, {
        cause: errors[0],
      });
    }
  }
}

/** What an empty segment holds. */
function emptyContents(segment: number): SegmentContents {
  return { segment, ids: [], runs: new Float64Array(0), marks: new Float64Array(0), end: 0 };
}
