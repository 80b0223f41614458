import { close as closeFd } from 'node:fs';
import { readdir } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { HealthCheck } from '@cairn/actor-core';
import {
  AbstractMessageJournal,
  type CorruptionLocation,
  checkDirectoryPath,
  checkPersistenceId,
  claimStoreDirectory,
  isJournalId,
  isPersistenceError,
  type JournalCapabilities,
  JournalCorruptedError,
  type JournalWrite,
  newJournalId,
  type OrderedFilter,
  type PositionedEvent,
  ReadOnlyError,
  SequenceConflictError,
  StorageError,
  type StoredEvent,
  storeBackendOf,
} from '@cairn/actor-core';
import { DirectoryLock } from '@cairn/snapshot';
import { COMPACTION_INTERVAL_MS, compactedFrames, runsById, sparseSegments } from './compaction';
import { FileOffsetStore } from './file-offset-store';
import {
  CHECKPOINT_FILE,
  type Checkpoint,
  decodeCheckpoint,
  decodeIndex,
  encodeCheckpoint,
  type RepairEntry,
} from './index-file';
import { type CorruptSegment, rebuildIndex } from './index-rebuild';
import { RepairRefusedError } from './journal-errors';
import { JournalIo } from './journal-io';
import {
  checkOptions,
  DEFAULT_LOCK_STALE_MS,
  DEFAULT_SEGMENT_SIZE,
  type FileMessageJournalOptions,
} from './journal-options';
import { LegacyPositions } from './legacy-positions';
import { entryOf, type IdIndex } from './log-index';
import { LogReader } from './log-reader';
import { OrderedIndex } from './ordered-index';
import { OrderedReads } from './ordered-reads';
import {
  type EncodedFrame,
  encodeFrame,
  encodeSegmentHeader,
  indexFileName,
  parseSegmentFileName,
  SEGMENT_HEADER_SIZE,
  segmentFileName,
} from './record-codec';
import {
  applyRepair,
  type CorruptionRepair,
  firstUnreadable,
  QUARANTINE_DIR,
  quarantineDeadRecords,
} from './repair';
import { closeWhenUnread, emptyContents, newSegment, type Segment } from './segment';
import type { SegmentContents, SegmentScan } from './segment-scan';

/** A read-only open retries this often when a live writer deletes or replaces a file under it. */
const READ_ONLY_OPEN_ATTEMPTS = 3;
/** The file holding the journal's id (which offsets carry), created with the journal. */
const JOURNAL_ID_FILE = 'journal-id';
function settledQuietly(): void {}

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
  readonly capabilities: JournalCapabilities = {
    persistent: true,
    health: true,
    concurrentCommits: true,
    query: true,
    deletion: true,
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
  private readonly io: JournalIo;
  private readonly lockStaleMs: number;
  private lock: DirectoryLock | undefined;
  private readonly index = new Map<string, IdIndex>();
  private readonly segments = new Map<number, Segment>();
  private active!: Segment;
  /** Log writes, one at a time, in order. */
  private writing: Promise<unknown> = Promise.resolve();
  /** Background sealing, compaction and segment deletion, one at a time. */
  private maintenance: Promise<void> = Promise.resolve();
  private compactionQueued = false;
  private lastCompaction = Number.NEGATIVE_INFINITY;
  /** Serves reads from `index` and `segments`, which it shares. */
  private readonly logReader: LogReader;
  /** Serves the ordered reads of the queries from `order`, through logReader. */
  private readonly orderedReads: OrderedReads;
  /** Set when the log can no longer be written safely (lock lost, a failed write not undone). */
  private failure: StorageError | undefined;
  /** Every repair whose dead records may still be on disk (kept in the checkpoint). */
  private repairs: RepairEntry[] = [];
  /** Ids being repaired: their appends and truncations wait for it. */
  private readonly repairing = new Map<string, Promise<void>>();
  /** The global order: every event by position (see ordered-index.ts). */
  private readonly order = new OrderedIndex();
  /** Positions of events written before events had them. */
  private legacy = new LegacyPositions([], 0);
  /** The next position to give out (positions of a failed commit are not given again). */
  private nextPosition = 1;
  /** The position of the last committed event: everything at or below it is committed. */
  private head = 0;
  private journalIdValue = '';
  /** The last segment's format version when it was opened (1: written by a build before positions). */
  private activeVersion = 2;

  private constructor(options: FileMessageJournalOptions) {
    super(options);
    this.path = options.path;
    this.dir = path.resolve(options.path);
    this.fsync = options.fsync ?? true;
    this.segmentSize = options.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    this.lockStaleMs = options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS;
    this.io = new JournalIo(options.ioThreads ?? Math.max(1, Math.floor(os.availableParallelism() / 2)));
    this.logReader = new LogReader(this.io, this.dir, this.index, this.segments, (id, seq) =>
      this.legacy.positionOf(id, seq),
    );
    this.orderedReads = new OrderedReads(this.logReader, this.order, this.index, this.segments);
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
    // Refuses another backend's directory (an LMDB environment, say) before anything is created in it.
    await claimStoreDirectory(this.dir, 'file', { readOnly: this.readOnly });
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
    const contents: SegmentContents[] = [];
    const problemsFound: CorruptSegment[] = [];
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

    rebuildIndex(
      this.index,
      this.segments,
      { marks: checkpoint?.marks ?? [], repairs: this.repairs, contents, problemsFound },
      this.dir,
      this.reporter,
    );
    await this.loadOrder(checkpoint, contents);
    if (this.readOnly) return;
    this.removeDeadSegments();
    this.scheduleCompaction();
  }

  /**
   * Builds the global order from what the open found, and, opened for writing, upgrades the journal
   * to format 2 once: the positions of events written before (format 1) are fixed by physical order and
   * saved in the checkpoint, and appends move to a new format-2 segment, which an older build refuses
   * to open (so it cannot add events without positions behind this build's back).
   */
  private async loadOrder(
    checkpoint: Checkpoint | undefined,
    contents: readonly SegmentContents[],
  ): Promise<void> {
    this.journalIdValue = await this.loadJournalId();
    let numbered = false;
    if (checkpoint?.legacy) {
      this.legacy = new LegacyPositions(checkpoint.legacy, checkpoint.legacyCount ?? 0);
    } else if (contents.some((c) => hasUnpositioned(c))) {
      this.legacy = LegacyPositions.number(contents);
      numbered = true;
    }
    const repairs = this.repairs;
    const events: Array<Parameters<OrderedIndex['add']>[0]> = [];
    let givenOut = 0;
    for (const c of contents) {
      const tagsOf = new Map<number, string[]>();
      for (let t = 0; t < c.tagged.length; t += 2) {
        const event = c.tagged[t]!;
        const list = tagsOf.get(event) ?? [];
        list.push(c.tags[c.tagged[t + 1]!]!);
        tagsOf.set(event, list);
      }
      for (let e = 0; e < c.events.length; e += 5) {
        const persistenceId = c.ids[c.events[e]!]!;
        const sequenceNr = c.events[e + 3]!;
        // A truncated or cut event's position was given out all the same: the head never goes below it.
        if (c.events[e + 4]! > givenOut) givenOut = c.events[e + 4]!;
        const entry = this.index.get(persistenceId);
        if (!entry || sequenceNr < entry.lowWater) continue;
        const dead = repairs.some(
          (r) =>
            r.id === persistenceId && c.segment < r.since && sequenceNr >= r.first && sequenceNr <= r.last,
        );
        if (dead) continue;
        const position = c.events[e + 4]! || this.legacy.positionOf(persistenceId, sequenceNr);
        if (position === 0) {
          this.reporter({
            kind: 'corruption-found',
            message: `${segmentFileName(c.segment)}: "${persistenceId}" sequenceNr ${sequenceNr} is a format-1 record the position numbering does not know (written by an older build after this one upgraded the journal?); queries leave it out, readFrom serves it`,
            persistenceId,
          });
          continue;
        }
        const tags = tagsOf.get(e / 5);
        events.push({
          position,
          segment: c.segment,
          offset: c.events[e + 1]!,
          length: c.events[e + 2]!,
          persistenceId,
          sequenceNr,
          ...(tags ? { tags } : {}),
        });
      }
    }
    events.sort((a, b) => a.position - b.position);
    for (const event of events) this.order.add(event);
    this.head = Math.max(this.order.last, checkpoint?.lastPosition ?? 0, this.legacy.count, givenOut);
    this.nextPosition = this.head + 1;
    if (this.readOnly) return;
    if (this.activeVersion < 2) await this.roll();
    if (numbered) await this.writeCheckpoint();
  }

  /** The journal's id, created (and made durable) with the journal; a read-only open of a journal without one gets one for this open only. */
  private async loadJournalId(): Promise<string> {
    const file = path.join(this.dir, JOURNAL_ID_FILE);
    const bytes = await this.io.run('readFileIfExists', { file });
    if (bytes !== undefined) {
      const id = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8').trim();
      if (!isJournalId(id)) throw this.corruptFile(file, 0, `${JOURNAL_ID_FILE} does not hold a journal id`);
      return id;
    }
    const id = newJournalId();
    if (!this.readOnly) {
      await this.io.run('replaceFile', { dir: this.dir, file, bytes: Buffer.from(`${id}\n`), sync: true });
    }
    return id;
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
    this.lock = await DirectoryLock.acquire(this.dir, 'journal', this.lockStaleMs, this.reporter, (error) => {
      this.failure = new StorageError(
        `lost the lock of ${this.dir} (another process may have taken it): ${error.message}; reopen the journal`,
        { cause: error },
      );
      this.reporter({ kind: 'lock-lost', message: this.failure.message, error: this.failure });
    });
    return this.io.run('prepareDirectory', { dir: this.dir });
  }

  private addSegment(number: number, file: string): Segment {
    const segment = newSegment(number, file);
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
  private async openActive(segment: Segment, problemsFound: CorruptSegment[]): Promise<SegmentContents> {
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
    this.activeVersion = scan.version ?? 2;
    return this.adoptActive(segment, scan, problemsFound);
  }

  /**
   * The last segment, read as it is now, changing nothing: a partial last frame (a live writer's commit
   * in progress, or one torn by a crash) is left out and reported, never cut.
   */
  private async openActiveReadOnly(
    segment: Segment,
    problemsFound: CorruptSegment[],
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
  private adoptActive(segment: Segment, scan: SegmentScan, problemsFound: CorruptSegment[]): SegmentContents {
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
    return entryOf(this.index, persistenceId);
  }

  private corruptFile(file: string, offset: number, reason: string): JournalCorruptedError {
    return new JournalCorruptedError({ file, offset, reason });
  }

  // ---- writing ----

  /**
   * While the id is being repaired, a write waits for the repair (and is numbered after the kept
   * records); its messages were serialized at the call, so changing them afterwards changes nothing.
   * (Read-only refusals are the core's.)
   */
  protected override writeGate(persistenceId: string): Promise<void> | undefined {
    return this.repairing.get(persistenceId);
  }

  protected async _write(writes: readonly JournalWrite[]): Promise<void> {
    // Positions are given out here, in call order, which is the order frames go to the log; those of a
    // commit that fails are not given again.
    const firstPosition = this.nextPosition;
    for (const w of writes) this.nextPosition += w.events.length;
    const frame = encodeFrame(writes, firstPosition);
    await this.commitFrame(frame, (segment, position) => {
      let n = 0;
      frame.parts.forEach((part, i) => {
        const { events } = writes[i]!;
        const entry = this.entry(part.persistenceId);
        const before = entry.runCount > 0 ? entry.segmentOf(entry.runCount - 1) : -1;
        entry.add(segment, position + part.offset, part.byteLength, events[0]!.sequenceNr, events.length);
        if (before !== segment) this.segments.get(segment)!.liveIds++;
        let offset = position + part.offset;
        for (const e of events) {
          const length = frame.eventLengths[n]!;
          this.order.add({
            position: firstPosition + n,
            segment,
            offset,
            length,
            persistenceId: part.persistenceId,
            sequenceNr: e.sequenceNr,
            ...(e.tags ? { tags: e.tags } : {}),
          });
          offset += length;
          n++;
        }
      });
      this.head = firstPosition + n - 1;
    });
  }

  /** `sequenceNr` is already clamped to highest + 1 by the core. */
  protected async _truncateBefore(persistenceId: string, sequenceNr: number): Promise<void> {
    const entry = this.entry(persistenceId);
    if (sequenceNr <= entry.lowWater) return;
    await this.commitFrame(encodeFrame([{ persistenceId, lowWater: sequenceNr }], 0), () => {
      for (const s of entry.raiseLowWater(sequenceNr)) {
        const segment = this.segments.get(s);
        if (segment) segment.liveIds--;
      }
    });
    this.removeDeadSegments();
    this.scheduleCompaction();
  }

  /** A low-water mark record for an id that never had events: its highest reads `highest` from then on. */
  protected override async _startAfter(persistenceId: string, highest: number): Promise<void> {
    const entry = this.entry(persistenceId);
    if (entry.highest !== 0) throw new SequenceConflictError(persistenceId, 0, entry.highest);
    await this.commitFrame(encodeFrame([{ persistenceId, lowWater: highest + 1 }], 0), () => {
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
      const failure = await firstUnreadable(this, persistenceId);
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

  /**
   * The repairs whose cut records may still be in a segment (oldest first): what was cut, when, where
   * the bytes went, and whether an operator acknowledged it. For `cairn verify`, which shows them as
   * history.
   */
  repairHistory(persistenceId?: string): RepairEntry[] {
    this.checkOpen();
    return this.repairs
      .filter((r) => persistenceId === undefined || r.id === persistenceId)
      .map((r) => ({ ...r }));
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
    const maintenanceBefore = this.maintenance;
    const commit = async (): Promise<RepairEntry[]> => {
      if (this.failure) throw this.failure;
      await maintenanceBefore;
      const at = Date.now();
      const before = this.repairs;
      const acknowledged: RepairEntry[] = [];
      this.repairs = before.map((r) => {
        if (r.id !== persistenceId || r.acknowledged !== undefined) return r;
        const done = { ...r, acknowledged: at };
        acknowledged.push(done);
        return done;
      });
      if (acknowledged.length === 0) return [];
      try {
        await this.writeCheckpoint();
      } catch (e) {
        this.repairs = before;
        throw e;
      }
      return acknowledged.map((r) => ({ ...r }));
    };
    const done = this.writing.then(commit);
    this.writing = done.catch(() => undefined);
    this.maintenance = this.maintenance.then(() => done.then(settledQuietly, settledQuietly));
    return done;
  }

  private async cutAfterCorruption(
    persistenceId: string,
    failure: JournalCorruptedError & { sequenceNr: number },
  ): Promise<CorruptionRepair> {
    const entry = this.index.get(persistenceId)!;
    const { first, last, cut, at, file, quarantine, bytes } = await quarantineDeadRecords(
      { dir: this.dir, io: this.io, segments: this.segments, reader: this.logReader },
      persistenceId,
      entry,
      failure,
    );

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
        quarantine: file,
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
      applyRepair(entry, repair, this.dir);
      this.order.kill(persistenceId, first, since);
      const after = new Set(entry.segments());
      for (const s of before) {
        const segment = this.segments.get(s);
        if (segment && !after.has(s)) segment.liveIds--;
      }
      this.logReader.forget(persistenceId);
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
      for (const s of dead) closeWhenUnread(s);
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
        lastPosition: this.nextPosition - 1,
        ...(this.legacy.count > 0 ? { legacy: this.legacy.runs, legacyCount: this.legacy.count } : {}),
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
      for (const segment of sparseSegments(this.index, this.segments, this.active)) {
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
    const old = await this.logReader.readSegment(segment, 0, segment.end, '', 0).catch(() => undefined);
    if (!old || old.length === 0 || segment.deleted) return;
    const frames = compactedFrames(segment, old, this.index, this.reporter);
    if (!frames) return;
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
    closeWhenUnread(segment);
    for (const [id, runs] of runsById(scan)) {
      // 0: everything copied was truncated meanwhile; -1: the truncation already counted it.
      if (this.index.get(id)?.replaceSegmentRuns(segment.number, runs) === 0) fresh.liveIds--;
    }
    // The records moved inside the segment: so do their places in the global order.
    for (let e = 0; e < scan.events.length; e += 5) {
      const id = scan.ids[scan.events[e]!]!;
      const position = scan.events[e + 4]! || this.legacy.positionOf(id, scan.events[e + 3]!);
      this.order.move(position, scan.events[e + 1]!, scan.events[e + 2]!);
    }
    if (fresh.liveIds <= 0) this.removeDeadSegments();
  }

  // ---- reading ----

  protected async _highestSequenceNr(persistenceId: string): Promise<number> {
    return this.index.get(persistenceId)?.highest ?? 0;
  }

  protected async *_persistenceIds(): AsyncGenerator<string> {
    for (const [id, entry] of this.index) if (entry.highest > 0) yield id;
  }

  protected _read(
    persistenceId: string,
    fromSequenceNr: number,
    toSequenceNr: number,
    max: number,
  ): AsyncGenerator<StoredEvent[]> {
    return this.logReader.read(persistenceId, fromSequenceNr, toSequenceNr, max);
  }

  // ---- queries (the core implements EventQuery over these) ----

  protected override _journalId(): string {
    return this.journalIdValue;
  }

  protected override async _headPosition(): Promise<number> {
    return this.head;
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
    return this.index.get(persistenceId)?.lowWater ?? 1;
  }

  protected override _locate(
    persistenceId: string,
    sequenceNr: number,
  ): Pick<CorruptionLocation, 'file' | 'offset' | 'key'> {
    return this.logReader.locate(persistenceId, sequenceNr);
  }

  // ---- closing ----

  /**
   * maxDiskBytes counts the live segments' bytes: what truncation frees comes back when a segment with
   * no live events left is deleted, or compacted (see segmentSize).
   */
  /**
   * `lock`: the directory's lock held and the log writable; failed once the lock was lost (or a failed
   * write could not be undone): the journal then refuses writes until reopened.
   */
  protected override _healthChecks(): HealthCheck[] {
    if (this.readOnly) return [{ name: 'lock', status: 'ok', detail: 'read-only: no lock taken' }];
    if (this.failure) return [{ name: 'lock', status: 'failed', detail: this.failure.message }];
    return [{ name: 'lock', status: 'ok', detail: `${this.dir} locked by this process` }];
  }

  protected override _diskBytesUsed(): number {
    let bytes = 0;
    for (const segment of this.segments.values()) bytes += segment.end;
    return bytes;
  }

  protected async _close(): Promise<void> {
    await this.releaseResources();
  }

  private async releaseResources(): Promise<void> {
    await this.writing;
    await this.maintenance;
    await this.logReader.settled();
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
    // A lock already lost (reported then, and writes refused since) has nothing left to release.
    await this.lock?.release().catch((e: unknown) => errors.push(e));
    this.lock = undefined;
    if (errors.length > 0) {
      throw new StorageError(`closing the journal in ${this.dir} failed: ${String(errors[0])}`, {
        cause: errors[0],
      });
    }
  }
}

/** True when the segment holds events written before events had positions (format 1). */
function hasUnpositioned(contents: SegmentContents): boolean {
  for (let e = 4; e < contents.events.length; e += 5) if (contents.events[e] === 0) return true;
  return false;
}
