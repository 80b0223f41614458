import type { JournalCorruptedError, MessageJournal } from '@cairn/actor-core';
import type { RepairEntry } from './index-file';
import { RepairRefusedError } from './journal-errors';
import { SEGMENT_HEADER_SIZE } from './record-codec';
import { applyRepair, type CorruptionRepair, firstUnreadable, quarantineDeadRecords } from './repair';
import type { SegmentLog } from './segment-log';

/**
 * Repairs after corruption, run against the log: one id at a time cut back to its last good record,
 * the cut recorded in the checkpoint, and the history of repairs an operator acknowledges. The record
 * copying itself is repair.ts's; the public methods are FileMessageJournal's.
 */
export class LogRepairs {
  /** Ids being repaired: their appends and truncations wait for it. */
  private readonly repairing = new Map<string, Promise<void>>();

  constructor(
    private readonly log: SegmentLog,
    /** What the journal reads the id through (to find its first unreadable record). */
    private readonly journal: Pick<MessageJournal, 'readFrom' | 'highestSequenceNr'>,
    /** Forgets the core's cached highest sequenceNr of an id whose numbers a repair lowered. */
    private readonly forgetSequenceState: (persistenceId: string) => void,
  ) {}

  /** The repair of `persistenceId` in progress, which its writes wait for; undefined when there is none. */
  inProgress(persistenceId: string): Promise<void> | undefined {
    return this.repairing.get(persistenceId);
  }

  /** See FileMessageJournal.repairAfterCorruption (arguments already checked there). */
  async repair(persistenceId: string): Promise<CorruptionRepair> {
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
      // Appends issued before this call settle first; later ones wait (see inProgress).
      const highest = await this.journal.highestSequenceNr(persistenceId);
      const failure = await firstUnreadable(this.journal, persistenceId);
      if (!failure) {
        throw new RepairRefusedError(
          persistenceId,
          highest === 0
            ? 'it has no events'
            : `it reads back clean through sequenceNr ${highest}: there is nothing to cut`,
        );
      }
      return await this.cut(persistenceId, failure);
    } finally {
      this.repairing.delete(persistenceId);
      finished();
    }
  }

  /** See FileMessageJournal.repairHistory. */
  history(persistenceId?: string): RepairEntry[] {
    return this.log.repairs
      .filter((r) => persistenceId === undefined || r.id === persistenceId)
      .map((r) => ({ ...r }));
  }

  /** See FileMessageJournal.acknowledgeRepairs. */
  acknowledge(persistenceId: string): Promise<RepairEntry[]> {
    const log = this.log;
    return log.maintenance.runBetween(async () => {
      const at = Date.now();
      const before = log.repairs;
      const acknowledged: RepairEntry[] = [];
      log.repairs = before.map((r) => {
        if (r.id !== persistenceId || r.acknowledged !== undefined) return r;
        const done = { ...r, acknowledged: at };
        acknowledged.push(done);
        return done;
      });
      if (acknowledged.length === 0) return [];
      try {
        await log.writeCheckpoint();
      } catch (e) {
        log.repairs = before;
        throw e;
      }
      return acknowledged.map((r) => ({ ...r }));
    });
  }

  private async cut(
    persistenceId: string,
    failure: JournalCorruptedError & { sequenceNr: number },
  ): Promise<CorruptionRepair> {
    const log = this.log;
    const entry = log.index.get(persistenceId)!;
    const { first, last, cut, at, file, quarantine, bytes } = await quarantineDeadRecords(
      log,
      persistenceId,
      entry,
      failure,
    );

    // The cut itself: one commit in the log's order, while no maintenance rewrites the checkpoint.
    await log.maintenance.runBetween(async () => {
      // Events of the id appended from now on go to a segment begun after the repair (see RepairEntry).
      const since = log.active.end > SEGMENT_HEADER_SIZE ? (await log.roll()).number : log.active.number;
      const repair: RepairEntry = {
        id: persistenceId,
        first,
        last,
        since,
        ...(cut ? { cut } : {}),
        quarantine: file,
        at,
      };
      log.repairs.push(repair);
      try {
        await log.writeCheckpoint();
      } catch (e) {
        log.repairs = log.repairs.filter((r) => r !== repair);
        throw e;
      }
      const before = entry.segments();
      applyRepair(entry, repair, log.dir);
      log.order.kill(persistenceId, first, since);
      const after = new Set(entry.segments());
      for (const s of before) {
        const segment = log.segments.get(s);
        if (segment && !after.has(s)) segment.liveIds--;
      }
      log.reader.forget(persistenceId);
      this.forgetSequenceState(persistenceId);
    });
    log.maintenance.removeDeadSegments();
    log.maintenance.scheduleCompaction();
    return {
      keptThrough: first - 1,
      removed: { first, last },
      quarantine,
      bytes,
      reason: failure.message,
    };
  }
}
