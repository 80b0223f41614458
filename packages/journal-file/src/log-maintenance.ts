import * as path from 'node:path';
import {
  COMPACTION_INTERVAL_MS,
  compactedFrames,
  runsById,
  sparseSegments,
  withDeadRecords,
} from './compaction';
import { indexFileName } from './record-codec';
import { closeWhenUnread, type Segment } from './segment';
import type { SegmentLog } from './segment-log';

function settledQuietly(): void {}

/**
 * The log's background work, one task at a time: sealing full segments, deleting sealed segments with
 * no live event left, and compacting sparse ones. Appends never wait for it; repairs and
 * acknowledgements rewrite the checkpoint only between two tasks (`runBetween`).
 */
export class LogMaintenance {
  /** The last task queued: every task runs after the one before it settled. */
  private tail: Promise<void> = Promise.resolve();
  private compactionQueued = false;
  private lastCompaction = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly log: SegmentLog,
    private readonly closed: () => boolean,
  ) {}

  /** Queues `task`; a failure is reported (and the work retried by a later task), never thrown. */
  inBackground(task: () => Promise<void>): void {
    this.tail = this.tail.then(task).catch((e: unknown) => {
      this.log.reporter({
        kind: 'maintenance-failed',
        message: `${this.log.dir}: background maintenance failed: ${(e as Error)?.message ?? e}; retried later`,
      });
    });
  }

  /**
   * Queues `change` in the log's write queue, to run once the background work queued before it is done
   * (refused once the log cannot be written); background work queued after it waits for it in turn. For
   * changes that rewrite the checkpoint.
   */
  runBetween<T>(change: () => Promise<T>): Promise<T> {
    const before = this.tail;
    const done = this.log.enqueue(async () => {
      if (this.log.failure) throw this.log.failure;
      await before;
      return change();
    });
    this.tail = this.tail.then(() => done.then(settledQuietly, settledQuietly));
    return done;
  }

  /** Resolves once the background work queued so far is done. */
  settled(): Promise<void> {
    return this.tail;
  }

  /** Deletes sealed segments that hold no live event, after saving every low-water mark to the checkpoint. */
  removeDeadSegments(): void {
    const log = this.log;
    const isDead = (s: Segment) =>
      s.sealed && s !== log.active && s.liveIds <= 0 && !s.problems && !s.deleted;
    if (![...log.segments.values()].some(isDead)) return;
    this.inBackground(async () => {
      const dead = [...log.segments.values()].filter(isDead);
      if (dead.length === 0) return;
      await log.writeCheckpoint(dead);
      for (const s of dead) {
        s.deleted = true;
        log.segments.delete(s.number);
      }
      await log.io.run('removeFiles', {
        dir: log.dir,
        files: dead.flatMap((s) => [s.file, path.join(log.dir, indexFileName(s.number))]),
        sync: log.fsync,
      });
      for (const s of dead) closeWhenUnread(s);
    });
  }

  /**
   * Queues a look for sparse segments: once, however many truncations ask before it runs, and (unless
   * `now`) at most every COMPACTION_INTERVAL_MS, since the look walks the whole index on the main thread.
   */
  scheduleCompaction(now = false): void {
    if (this.compactionQueued) return;
    if (!now && performance.now() - this.lastCompaction < COMPACTION_INTERVAL_MS) return;
    this.compactionQueued = true;
    this.inBackground(async () => {
      this.compactionQueued = false;
      this.lastCompaction = performance.now();
      for (const segment of sparseSegments(this.log.index, this.log.segments, this.log.active)) {
        if (this.closed()) return;
        await this.compactSegment(segment);
      }
    });
  }

  /**
   * An explicit compaction (`journal.compact()`, `cairn compact`): seals the segment being written when it
   * holds a record that is not live (appends go on in a fresh one), deletes the segments left without a
   * live event and rewrites every sealed segment holding a dead record, however much of it is live; then
   * resolves. Afterwards no truncated or deleted event's bytes are left in the log's files.
   */
  async compactAll(): Promise<void> {
    const log = this.log;
    await log.enqueue(async () => {
      if (log.failure) throw log.failure;
      if (withDeadRecords(log.index, [log.active]).length > 0) await log.roll();
    });
    this.removeDeadSegments();
    this.inBackground(async () => {
      const sealed = [...log.segments.values()].filter(
        (s) => s.sealed && s !== log.active && !s.problems && !s.deleted && s.liveIds > 0,
      );
      for (const segment of withDeadRecords(log.index, sealed)) {
        if (this.closed()) return;
        await this.compactSegment(segment);
      }
    });
    await this.settled();
  }

  /**
   * Rewrites a sealed segment with only its live events (record bytes copied as they are, checksums
   * included), under the same number, so the log's order and every id's sequence order stay as they
   * were. Appends never wait for it; reads in flight finish on the old file's open descriptor.
   */
  private async compactSegment(segment: Segment): Promise<void> {
    const log = this.log;
    const old = await log.reader.readSegment(segment, 0, segment.end, '', 0).catch(() => undefined);
    if (!old || old.length === 0 || segment.deleted) return;
    const frames = compactedFrames(segment, old, log.index, log.reporter);
    if (!frames) return;
    await log.writeCheckpoint();
    const bytes = Buffer.concat(frames);
    const { installed, scan } = await log.io.run(
      'installSegment',
      {
        dir: log.dir,
        file: segment.file,
        indexFile: path.join(log.dir, indexFileName(segment.number)),
        segment: segment.number,
        bytes,
        sync: true, // always: see FileMessageJournalOptions.fsync
      },
      true,
    );
    if (!installed) {
      segment.problems = true;
      log.reporter({
        kind: 'maintenance-failed',
        message: `${segment.file}: its compacted copy did not verify; the segment is kept as it is`,
      });
      return;
    }
    const fresh = log.addSegment(segment.number, segment.file);
    fresh.sealed = true;
    fresh.end = scan.end;
    fresh.liveIds = segment.liveIds;
    segment.deleted = true;
    segment.replaced = true;
    closeWhenUnread(segment);
    for (const [id, runs] of runsById(scan)) {
      // 0: everything copied was truncated meanwhile; -1: the truncation already counted it.
      if (log.index.get(id)?.replaceSegmentRuns(segment.number, runs) === 0) fresh.liveIds--;
    }
    // The records moved inside the segment: so do their places in the global order.
    for (let e = 0; e < scan.events.length; e += 5) {
      const id = scan.ids[scan.events[e]!]!;
      const position = scan.events[e + 4]! || log.legacy.positionOf(id, scan.events[e + 3]!);
      log.order.move(position, scan.events[e + 1]!, scan.events[e + 2]!);
    }
    if (fresh.liveIds <= 0) this.removeDeadSegments();
  }
}
