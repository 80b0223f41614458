import { LmdbMessageJournal } from '@cairn/journal-lmdb';
import { requireDist, spawnChild } from './child-process';
import { useTempDirs } from './temp-dir';

const tempDir = useTempDirs();

interface Logged {
  id: string;
  seq: number;
}

/**
 * SIGKILL at a random moment while 20 ids append with default (durable) settings; every append the
 * child saw acknowledged must be there after reopening, numbered 1..highest without gaps or duplicates.
 */
describe('crash safety (SIGKILL)', () => {
  beforeAll(requireDist);

  it('keeps every acknowledged append across two kills', async () => {
    const path = tempDir();
    const ids = 20;
    const acked = new Map<string, number>();
    for (let round = 0; round < 2; round++) {
      const child = spawnChild(['crash', path, String(ids)]);
      await child.waitForAcks(100 + Math.floor(Math.random() * 400));
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 150));
      child.process.kill('SIGKILL');
      expect(await child.exited).toBe('SIGKILL');
      for (const [id, seq] of child.acks) acked.set(id, Math.max(acked.get(id) ?? 0, seq));
      expect(child.acks.length).toBeGreaterThan(0);

      const journal = await LmdbMessageJournal.open<Logged>({ path });
      for (let i = 0; i < ids; i++) {
        const id = `acct-${i}`;
        const highest = await journal.highestSequenceNr(id);
        expect(highest).toBeGreaterThanOrEqual(acked.get(id) ?? 0);
        let expected = 1;
        for await (const entry of journal.readFrom(id, 1)) {
          expect(entry.sequenceNr).toBe(expected);
          expect(entry.message).toMatchObject({ id, seq: expected });
          expected++;
        }
        expect(expected - 1).toBe(highest);
      }
      await journal.close();
    }
  });
});
