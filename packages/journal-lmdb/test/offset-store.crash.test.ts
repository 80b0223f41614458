import { LmdbMessageJournal } from '@cairn/journal-lmdb';
import { spawnChild } from './child-process';
import { useTempDirs } from './temp-dir';

const tempDir = useTempDirs();

/** SIGKILL while a child saves offsets (durable by default): every acknowledged save survives. */
describe('offsets across SIGKILL', () => {
  it('an acknowledged save is never lost', async () => {
    const path = tempDir();
    for (let round = 0; round < 2; round++) {
      const child = spawnChild(['offsets', path]);
      await child.waitForAcks(20 + Math.floor(Math.random() * 80));
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 50));
      child.process.kill('SIGKILL');
      expect(await child.exited).toBe('SIGKILL');
      const acked = Math.max(...child.acks.map(([, k]) => k));
      const journal = await LmdbMessageJournal.open({ path });
      const saved = Number(await journal.offsetStore().load('p'));
      // The save in flight at the kill may or may not have landed; nothing acknowledged is missing.
      expect(saved).toBeGreaterThanOrEqual(acked);
      expect(saved).toBeLessThanOrEqual(acked + 1);
      await journal.close();
    }
  });

  it('exactly-once: the read model and the offset saved with it are always both there or both not', async () => {
    const path = tempDir();
    for (let round = 0; round < 3; round++) {
      const child = spawnChild(['transact', path]);
      await child.waitForAcks(10 + Math.floor(Math.random() * 60));
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 30));
      child.process.kill('SIGKILL');
      expect(await child.exited).toBe('SIGKILL');
      const acked = Math.max(...child.acks.map(([, k]) => k));
      const journal = await LmdbMessageJournal.open({ path });
      const offsets = journal.offsetStore();
      const count = offsets.readModel<string, number>('counters').get('count');
      expect(String(count)).toBe(await offsets.load('p'));
      expect(count).toBeGreaterThanOrEqual(acked);
      await journal.close();
    }
  });
});
