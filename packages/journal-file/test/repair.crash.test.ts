import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileMessageJournal, QUARANTINE_DIR } from '@cairn/journal-file';
import { killed, spawnFixture, waitForLine } from './child-process';
import { collect, flipByteAt, readUntilError, recordsOf, segmentFiles, tempDir } from './journal-files';

/**
 * A repair SIGKILLed at moments spread over its work (reading the id, writing the quarantine file,
 * rolling the segment, the checkpoint, the first appends after it). After each kill the journal must be
 * either as before (the id still corrupt and still detected at the same record, nothing lost) or
 * repaired (cut back exactly to the last good record, the quarantine file complete), never an id that
 * reads back clean but shorter without the repair's record of it.
 */
const DELAYS_MS = [0, 2, 3, 4, 5, 6, 7, 8, 10, 14, 20, 40, 80];

describe('FileMessageJournal.repairAfterCorruption crash safety', () => {
  let root: string;
  let template: string;
  let deadBytes: Buffer;
  beforeAll(async () => {
    root = tempDir();
    template = path.join(root, 'template');
    const journal = await FileMessageJournal.open({ path: template, ioThreads: 1, segmentSize: 8192 });
    for (let i = 1; i <= 20; i += 4) {
      await journal.appendBatch('a', [i, i + 1, i + 2, i + 3]);
      await journal.append('b', { i, pad: 'b'.repeat(200) });
    }
    await journal.close();
    const file = segmentFiles(template).find((f) =>
      recordsOf(f).some((r) => r.persistenceId === 'a' && r.sequenceNr === 10),
    )!;
    const records = recordsOf(file);
    const bad = records.find((r) => r.persistenceId === 'a' && r.sequenceNr === 10)!;
    flipByteAt(file, bad.payloadOffset);
    const bytes = fs.readFileSync(file);
    deadBytes = Buffer.concat(
      segmentFiles(template).flatMap((f) => {
        const b = f === file ? bytes : fs.readFileSync(f);
        return (f === file ? records : recordsOf(f))
          .filter((r) => r.persistenceId === 'a' && r.sequenceNr >= 10)
          .map((r) => b.subarray(r.offset, r.offset + r.length));
      }),
    );
  });
  afterAll(() => {
    fs.rmSync(root, { recursive: true, force: true });
  });

  it.each(DELAYS_MS)(
    'killed %i ms into a repair: as before or repaired, never silently shorter',
    async (delay) => {
      const dir = path.join(root, `round-${delay}`);
      fs.cpSync(template, dir, { recursive: true });
      const child = spawnFixture('repair-child.js', [dir, 'a']);
      await waitForLine(child, 'ready');
      await new Promise((resolve) => setTimeout(resolve, delay));
      await killed(child);
      const output = child.output();
      expect(child.errors()).not.toContain('failed:');
      const reported = output.includes('repaired ');
      const acked = output
        .split('\n')
        .filter((l) => l.startsWith('a '))
        .map((l) => Number(l.slice(2)));

      const journal = await FileMessageJournal.open<unknown>({
        path: dir,
        ioThreads: 1,
        lockStaleMs: 2000,
        reporter: () => undefined, // the dead child's lock and the bad bytes are reported: expected here
      });
      try {
        expect((await collect(journal.readFrom('b', 1))).length).toBe(5);
        const { served, error } = await readUntilError(journal.readFrom('a', 1));
        const quarantine = path.join(dir, QUARANTINE_DIR);
        const quarantined = fs.existsSync(quarantine)
          ? fs.readdirSync(quarantine).filter((n) => n.endsWith('.records'))
          : [];
        // A temp file of an interrupted quarantine write is removed on open.
        expect(
          fs.existsSync(quarantine) ? fs.readdirSync(quarantine).filter((n) => n.endsWith('.tmp')) : [],
        ).toEqual([]);
        if (error) {
          // As before: still corrupt at the same record, nothing cut, nothing acknowledged after.
          expect(reported).toBe(false);
          expect(error).toMatchObject({ code: 'ERR_JOURNAL_CORRUPTED', persistenceId: 'a', sequenceNr: 10 });
          expect(served.map((e) => e.message)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
          expect(await journal.highestSequenceNr('a')).toBe(20);
        } else {
          // Repaired: exactly 1..9 kept, then only what the child appended after the repair.
          expect(served.slice(0, 9).map((e) => e.message)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
          for (const e of served.slice(9)) expect(e.message).toEqual({ after: true });
          expect(served.map((e) => e.sequenceNr)).toEqual(served.map((_, i) => i + 1));
          expect(served.length).toBeGreaterThanOrEqual(Math.max(9, ...acked));
          // The cut records are in one complete quarantine file, byte for byte.
          expect(quarantined).toHaveLength(1);
          const bytes = fs.readFileSync(path.join(quarantine, quarantined[0]!));
          expect(bytes.subarray(bytes.indexOf(0x0a) + 1).equals(deadBytes)).toBe(true);
        }
        const state = error
          ? `as before${quarantined.length > 0 ? ' (killed after the quarantine file was written)' : ''}`
          : 'repaired';
        process.stdout.write(`round ${delay} ms: ${state}\n`);
      } finally {
        await journal.close();
      }
    },
    30_000,
  );
});
