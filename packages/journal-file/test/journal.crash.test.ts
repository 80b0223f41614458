import * as fs from 'node:fs';
import { isPersistenceError, type PersistenceReport } from '@cairn/actor-core';
import { FileMessageJournal } from '@cairn/journal-file';
import { killed, spawnFixture, waitForLine } from './child-process';
import { tempDir } from './journal-files';

interface Event {
  id: string;
  n: number;
  last: boolean;
}

const IDS = 16;
const SEGMENT_SIZE = 64 * 1024; // small, so rounds also cross segment rolls and seals

async function openAfterStaleLock(dir: string, reports: PersistenceReport[]): Promise<FileMessageJournal> {
  for (;;) {
    try {
      return await FileMessageJournal.open({
        path: dir,
        lockStaleMs: 2000,
        ioThreads: 1,
        segmentSize: SEGMENT_SIZE,
        reporter: (r) => reports.push(r),
      });
    } catch (e) {
      if (!isPersistenceError(e, 'ERR_JOURNAL_LOCKED')) throw e;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

describe.each([
  { fsync: true, kills: [150, 400, 250] },
  // Without fsync a process crash loses nothing either: the OS holds every written byte.
  { fsync: false, kills: [200, 350] },
])('FileMessageJournal under SIGKILL (fsync $fsync)', ({ fsync, kills }) => {
  it('keeps every acknowledged append and truncation, contiguous, without duplicates or half batches, over several kills', async () => {
    const dir = tempDir();
    const acked = new Map<string, number>();
    const truncated = new Map<string, number>();
    try {
      for (const killAfterMs of kills) {
        const child = spawnFixture('crash-appender.js', [
          dir,
          String(IDS),
          String(SEGMENT_SIZE),
          fsync ? 'fsync' : 'nofsync',
        ]);
        await waitForLine(child, 'ready');
        await new Promise((resolve) => setTimeout(resolve, killAfterMs));
        await killed(child);
        expect(child.errors()).not.toMatch(/failed/);
        let lines = 0;
        for (const line of child.output().split('\n')) {
          if (line.startsWith('T ')) {
            const [, id, mark] = line.split(' ');
            truncated.set(id!, Math.max(truncated.get(id!) ?? 0, Number(mark)));
            continue;
          }
          const [id, seq] = line.split(' ');
          if (!id?.startsWith('crash-') || seq === undefined) continue;
          acked.set(id, Math.max(acked.get(id) ?? 0, Number(seq)));
          lines++;
        }
        expect(lines).toBeGreaterThan(0);
      }

      const reports: PersistenceReport[] = [];
      const journal = await openAfterStaleLock(dir, reports);
      try {
        expect(reports.filter((r) => r.kind === 'corruption-found')).toEqual([]);
        for (let i = 0; i < IDS; i++) {
          const id = `crash-${i}`;
          const highest = await journal.highestSequenceNr(id);
          expect(highest).toBeGreaterThanOrEqual(acked.get(id) ?? 0);
          let expected: number | undefined;
          let lastEvent: Event | undefined;
          for await (const entry of journal.readFrom(id, 1)) {
            const event = entry.message as Event;
            // Entries below an acknowledged truncation never come back; above it, no gaps.
            // Ids that never truncate start at 1.
            expected ??= i % 2 === 1 ? 1 : entry.sequenceNr;
            expect(entry.sequenceNr).toBeGreaterThanOrEqual(truncated.get(id) ?? 1);
            expect(entry.sequenceNr).toBe(expected);
            expect(event).toMatchObject({ id, n: expected });
            lastEvent = event;
            expected++;
          }
          if (expected !== undefined) expect(expected - 1).toBe(highest);
          else expect(truncated.get(id) ?? 0).toBeGreaterThan(0);
          // A batch is whole or absent: the id never ends in the middle of one.
          if (lastEvent) expect(lastEvent.last).toBe(true);
        }
      } finally {
        await journal.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
