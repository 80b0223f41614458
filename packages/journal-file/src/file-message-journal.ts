import { close as closeFd, read } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  AbstractMessageJournal,
  type CorruptionLocation,
  isPersistenceError,
  type JournalCapabilities,
  JournalCorruptedError,
  type JournalOptions,
  type JournalWrite,
  StorageError,
  type StoredEvent,
} from '@cairn/actor-core';
import {
  CHECKPOINT_FILE,
  type Checkpoint,
  decodeCheckpoint,
  decodeIndex,
  encodeCheckpoint,
} from './index-file';
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
  isBadRecord,
  KIND_EVENT,
  parseSegmentFileName,
  SEGMENT_HEADER_SIZE,
  segmentFileName,
} from './record-codec';
import type { SegmentContents, SegmentScan } from './segment-scan';

/** Options of FileMessageJournal.open. */
export interface FileMessageJournalOptions extends JournalOptions {
  /** The journal directory; created when missing. One process writes it at a time (it is locked). */
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
}

export const DEFAULT_SEGMENT_SIZE = 64 * 1024 * 1024;
export const DEFAULT_LOCK_STALE_MS = 10_000;
const MIN_SEGMENT_SIZE = 4096;
/** A read fetches up to this much of a segment at once (neighbouring runs of an id in one go). */
const READ_CHUNK = 1024 * 1024;
/** Runs this close together are read together; the bytes between them (other ids) are skipped. */
const READ_GAP = 64 * 1024;
const PAGE_EVENTS = 1024;
/** A sealed segment whose live bytes fall below this share of its size is compacted. */
const COMPACT_BELOW = 0.5;
/** Truncations look for sparse segments at most this often (compact() looks at once). */
const COMPACTION_INTERVAL_MS = 5000;
/** Compacted segments are written in frames of about this size. */
const COMPACT_FRAME_BYTES = 1024 * 1024;

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
 * JournalCorruptedError at that point, and nothing is deleted to "repair" it.
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

  private constructor(options: FileMessageJournalOptions) {
    super(options);
    this.path = options.path;
    this.dir = path.resolve(options.path);
    this.fsync = options.fsync ?? true;
    this.segmentSize = options.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    this.lockStaleMs = options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS;
    this.io = new JournalIo(options.ioThreads ?? Math.max(1, Math.floor(os.availableParallelism() / 2)));
  }

  /**
   * Opens (creating when missing) the journal in `options.path`, taking its lock. Only what was written
   * since the last sealed segment is scanned. Rejects with JournalLockedError when another process (or
   * another open journal in this one) holds the directory.
   */
  static async open<M = unknown>(options: FileMessageJournalOptions): Promise<FileMessageJournal<M>> {
    checkOptions(options);
    const journal = new FileMessageJournal<M>(options);
    try {
      await journal.load();
    } catch (e) {
      await journal.releaseResources().catch(() => undefined);
      if (isPersistenceError(e)) throw e;
      throw new StorageError(`opening the journal in ${journal.dir} failed: ${(e as Error)?.message ?? e}`, {
        cause: e,
      });
    }
    return journal;
  }

  // ---- open ----

  private async load(): Promise<void> {
    await this.io.run('prepareDirectory', { dir: this.dir });
    this.lock = await JournalLock.acquire(this.dir, this.lockStaleMs, this.reporter, (error) => {
      this.failure = new StorageError(
        `lost the lock of ${this.dir} (another process may have taken it): ${error.message}; reopen the journal`,
        { cause: error },
      );
      this.reporter({ kind: 'lock-lost', message: this.failure.message, error: this.failure });
    });
    const entries = await this.io.run('prepareDirectory', { dir: this.dir });
    const leftovers = entries.filter((name) => name.startsWith('.') && name.endsWith('.tmp'));
    if (leftovers.length > 0) {
      await this.io.run('removeFiles', {
        dir: this.dir,
        files: leftovers.map((n) => path.join(this.dir, n)),
        sync: this.fsync,
      });
    }
    const numbers = entries
      .map(parseSegmentFileName)
      .filter((n): n is number => n !== undefined)
      .sort((a, b) => a - b);
    const indexed = new Set(entries.filter((n) => n.endsWith('.idx')));

    const checkpoint = await this.loadCheckpoint();
    this.checkSegmentsPresent(numbers, checkpoint);
    const marks = new Map(checkpoint?.marks ?? []);
    const contents: SegmentContents[] = [];
    const problemsFound: Array<{ file: string; scan: SegmentScan }> = [];
    for (const [i, number] of numbers.entries()) {
      const file = path.join(this.dir, segmentFileName(number));
      const last = i === numbers.length - 1;
      const segment = this.addSegment(number, file);
      if (!last) {
        segment.sealed = true;
        const loaded = indexed.has(indexFileName(number)) ? await this.loadIndex(segment) : undefined;
        if (loaded) {
          contents.push(loaded);
          segment.end = loaded.end;
          continue;
        }
        const { scan } = await this.io.run('sealSegment', {
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
    if (this.segments.size === 0 || this.active === undefined)
      await this.createActive(1 + (numbers.at(-1) ?? 0));

    // Marks first (the newest of each id wins), so that runs wholly below them are skipped as they load.
    for (const c of contents) {
      for (let m = 0; m < c.marks.length; m += 2) {
        const id = c.ids[c.marks[m]!]!;
        marks.set(id, Math.max(marks.get(id) ?? 1, c.marks[m + 1]!));
      }
    }
    for (const [id, mark] of marks) this.entry(id).lowWater = mark;
    // Records that failed verification first: a hole they leave is reported as them, not as a gap.
    for (const { file, scan } of problemsFound) {
      for (const problem of scan.problems) {
        const { persistenceId, sequenceNr } = problem;
        if (persistenceId !== undefined && sequenceNr !== undefined) {
          const entry = this.entry(persistenceId);
          if (sequenceNr >= entry.lowWater) {
            this.markCorrupt(entry, { sequenceNr, file, offset: problem.offset, reason: problem.reason });
          }
        }
        this.reporter({
          kind: 'corruption-found',
          message:
            `${file}: corrupt data at offset ${problem.offset} (${problem.reason})` +
            (persistenceId === undefined
              ? ''
              : `, probably "${persistenceId}" sequenceNr ${sequenceNr ?? '?'}`) +
            '; reads of the affected ids stop there; nothing was deleted',
          ...(persistenceId === undefined ? {} : { persistenceId }),
        });
      }
    }
    for (const c of contents) {
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
    for (const entry of this.index.values()) {
      for (const s of entry.segments()) this.segments.get(s)!.liveIds++;
    }
    this.removeDeadSegments();
    this.scheduleCompaction();
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
    const { bytes, size } = await this.io.run('readIndex', {
      indexFile: path.join(this.dir, indexFileName(segment.number)),
      file: segment.file,
    });
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
    const scan = await this.io.run('scanSegment', { file: segment.file, segment: segment.number });
    if (scan.badHeader) {
      if (scan.size >= SEGMENT_HEADER_SIZE) throw this.corruptFile(segment.file, 0, scan.badHeader);
      // A crash while the segment was being created: nothing was ever written to it.
      await this.io.run('removeFiles', { dir: this.dir, files: [segment.file], sync: this.fsync });
      this.segments.delete(segment.number);
      await this.createActive(segment.number);
      return {
        segment: segment.number,
        ids: [],
        runs: new Float64Array(0),
        marks: new Float64Array(0),
        end: 0,
      };
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

  private markCorrupt(entry: IdIndex, point: CorruptPoint): void {
    if (point.sequenceNr < entry.lowWater) return; // truncated: never read
    if (!entry.corrupt || point.sequenceNr < entry.corrupt.sequenceNr) entry.corrupt = point;
  }

  private corruptFile(file: string, offset: number, reason: string): JournalCorruptedError {
    return new JournalCorruptedError({ file, offset, reason });
  }

  // ---- writing ----

  protected async _write(writes: readonly JournalWrite[]): Promise<void> {
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
    await this.io.run('replaceFile', {
      dir: this.dir,
      file: path.join(this.dir, CHECKPOINT_FILE),
      bytes: encodeCheckpoint({
        marks,
        segments: segments.sort((a, b) => a - b),
        through: this.active.number,
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
    let prefetched: { chunk: ReadChunk; bytes: Promise<Buffer> } | undefined;
    let located: ServedPage | undefined;
    try {
      while (left > 0 && next <= toSequenceNr) {
        next = Math.max(next, entry.lowWater);
        if (entry.corrupt && next >= entry.corrupt.sequenceNr)
          throw this.corruptAt(persistenceId, entry.corrupt);
        const chunk = this.planRead(entry, next, toSequenceNr);
        if (!chunk) return;
        let bytes: Buffer;
        if (prefetched && sameChunk(prefetched.chunk, chunk)) {
          bytes = await prefetched.bytes;
        } else {
          prefetched?.bytes.catch(() => undefined);
          bytes = await this.readChunk(chunk, persistenceId, next);
        }
        prefetched = undefined;
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
            const record = decodeRecord(bytes, at, end, idBytes);
            const problem = isBadRecord(record)
              ? record.reason
              : record.kind !== KIND_EVENT
                ? `the index points at a record of kind ${record.kind}`
                : record.sequenceNr !== expected
                  ? `found sequenceNr ${record.sequenceNr} where ${expected} belongs`
                  : undefined;
            if (problem !== undefined || isBadRecord(record)) {
              failure = this.corruptAt(persistenceId, {
                sequenceNr: expected,
                file: chunk.file,
                offset: chunk.start + at,
                reason: problem ?? 'bad record',
              });
              break runs;
            }
            at += record.length;
            expected++;
            // Re-checked per record: a truncation may land while the consumer holds a page.
            if (record.sequenceNr < next || record.sequenceNr < entry.lowWater) continue;
            if (record.sequenceNr > toSequenceNr || left === 0) break runs;
            if (entry.corrupt && record.sequenceNr >= entry.corrupt.sequenceNr) break runs;
            page.push({
              sequenceNr: record.sequenceNr,
              timestamp: record.timestamp,
              serializerId: record.serializerId,
              payload: record.payload,
            });
            offsets.push(chunk.start + at - record.length);
            left--;
            next = record.sequenceNr + 1;
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

  private readChunk(chunk: ReadChunk, persistenceId: string, sequenceNr: number): Promise<Buffer> {
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
    const read = this.readSegment(
      chunk.segment,
      chunk.start,
      chunk.stop - chunk.start,
      persistenceId,
      sequenceNr,
    );
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
    // A segment deleted before its first read was never opened: the caller skips it (see _read).
    if (segment.deleted && segment.fd === undefined) return Buffer.alloc(0);
    segment.readers++;
    try {
      if (segment.fd === undefined) {
        segment.opening ??= this.io.run('openFile', { file: segment.file, flags: 'r' });
        const fd = await segment.opening;
        segment.opening = undefined;
        segment.fd ??= fd;
        if (segment.fd !== fd) closeFd(fd, () => undefined);
      }
      const buffer = Buffer.allocUnsafe(length);
      const fd = segment.fd;
      const bytesRead = await new Promise<number>((resolve, reject) =>
        read(fd, buffer, 0, length, position, (e, n) => (e ? reject(e) : resolve(n))),
      );
      if (bytesRead < length) {
        throw this.corruptAt(persistenceId, {
          sequenceNr,
          file: segment.file,
          offset: position + bytesRead,
          reason: `the segment ends ${length - bytesRead} bytes short of what the index holds`,
        });
      }
      return buffer;
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
