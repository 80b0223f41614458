import { LmdbMessageJournal } from '@cairn/journal-lmdb';
import { spawnChild } from './child-process';
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

describe('crash during a large truncation', () => {
  // Killed before, during (low-water mark committed, keys partly deleted: about 30 ms in here) and after
  // the truncation's transactions; which one each kill hits depends on the machine's speed.
  it.each([
    [0, 15],
    [15, 30],
    [30, 45],
  ])('never serves a half-truncated id (kill %i-%i ms after the appends)', async (min, max) => {
    const path = tempDir();
    const total = 30_000;
    const before = 29_000;
    const child = spawnChild(['truncate', path, String(total), String(before)]);
    await child.waitForLine('ready');
    await new Promise((resolve) => setTimeout(resolve, min + Math.random() * (max - min)));
    child.process.kill('SIGKILL');
    await child.exited;

    const journal = await LmdbMessageJournal.open<number>({ path });
    expect(await journal.highestSequenceNr('big')).toBe(total);
    let first: number | undefined;
    let expected = 0;
    for await (const entry of journal.readFrom('big', 1)) {
      first ??= entry.sequenceNr;
      if (expected === 0) expected = entry.sequenceNr;
      expect(entry.sequenceNr).toBe(expected++);
      expect(entry.message).toBe(entry.sequenceNr);
    }
    expect([1, before]).toContain(first);
    expect(expected - 1).toBe(total);
    // The global order serves exactly what readFrom does: no truncated event through the index.
    // (Compared once at the end: 30,000 expect calls cost seconds on a loaded machine.)
    const inOrder: number[] = [];
    for await (const entry of journal.allEvents()) inOrder.push(entry.sequenceNr);
    expect(inOrder).toEqual(Array.from({ length: total - first! + 1 }, (_, i) => first! + i));
    // Truncating again finishes whatever deleting the kill interrupted (the reopen already did).
    await journal.truncateBefore('big', before);
    await journal.close();
    const { open } = await import('lmdb');
    const root = open({ path, maxDbs: 64 });
    const binary = { encoding: 'binary', keyEncoding: 'binary' } as const;
    expect(root.openDB({ name: 'journal', ...binary }).getKeysCount()).toBe(total - before + 1);
    // The index entries of the deleted events went with them.
    expect(root.openDB({ name: 'positions', ...binary }).getKeysCount()).toBe(total - before + 1);
    await root.close();
  });
});
