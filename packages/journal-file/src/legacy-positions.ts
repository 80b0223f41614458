import type { SegmentContents } from './segment-scan';

/** A run of format-1 events of one id: [id, first sequenceNr, count, first position]. */
export type LegacyRun = readonly [string, number, number, number];

/**
 * Positions of events written by format 1 (before events carried one). They are numbered 1, 2, 3, ... in
 * the log's physical order (segment, then offset) at the first open under format 2, and the numbering
 * is saved in the checkpoint at once: compaction moves records later, the numbering stays.
 */
export class LegacyPositions {
  private readonly byId = new Map<string, LegacyRun[]>();

  constructor(
    readonly runs: readonly LegacyRun[],
    /** How many positions they take: the first format-2 event comes after. */
    readonly count: number,
  ) {
    for (const run of runs) {
      const list = this.byId.get(run[0]) ?? [];
      list.push(run);
      this.byId.set(run[0], list);
    }
    for (const list of this.byId.values()) list.sort((a, b) => a[1] - b[1]);
  }

  /** Numbers the format-1 events of `contents` (in log order) by physical order. */
  static number(contents: readonly SegmentContents[]): LegacyPositions {
    const runs: Array<[string, number, number, number]> = [];
    let position = 0;
    for (const c of contents) {
      for (let e = 0; e < c.events.length; e += 5) {
        if (c.events[e + 4] !== 0) continue;
        const id = c.ids[c.events[e]!]!;
        const sequenceNr = c.events[e + 3]!;
        position++;
        const open = runs[runs.length - 1];
        if (open && open[0] === id && open[1] + open[2] === sequenceNr && open[3] + open[2] === position) {
          open[2]++;
        } else {
          runs.push([id, sequenceNr, 1, position]);
        }
      }
    }
    return new LegacyPositions(runs, position);
  }

  /** The position of a format-1 event, or 0 when the numbering does not know it. */
  positionOf(persistenceId: string, sequenceNr: number): number {
    const list = this.byId.get(persistenceId);
    if (!list) return 0;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (list[mid]![1] + list[mid]![2] <= sequenceNr) lo = mid + 1;
      else hi = mid;
    }
    const run = list[lo];
    return run && run[1] <= sequenceNr ? run[3] + (sequenceNr - run[1]) : 0;
  }
}
