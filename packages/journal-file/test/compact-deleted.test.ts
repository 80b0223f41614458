import * as fs from 'node:fs';
import * as path from 'node:path';
import { canCompact } from '@cairn/actor-core';
import { FileMessageJournal } from '@cairn/journal-file';
import { collect, tempDir } from './journal-files';

const open = (dir: string, segmentSize?: number) =>
  FileMessageJournal.open({ path: dir, ioThreads: 1, ...(segmentSize ? { segmentSize } : {}) });

/** Every file under `dir` whose bytes contain `needle`. */
function filesHolding(dir: string, needle: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (fs.readFileSync(full).includes(needle)) found.push(full);
    }
  };
  walk(dir);
  return found;
}

describe('FileMessageJournal.compact() after a deletion', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("takes a deleted id's bytes off the disk, from the segment still being written too", async () => {
    let journal = await open(dir);
    expect(canCompact(journal)).toBe(true);
    for (let i = 0; i < 20; i++) {
      await journal.append('gone', { secret: `SECRET-OF-GONE-${i}` });
      await journal.append('kept', { note: `kept-${i}` });
    }
    await journal.deletePersistenceId('gone');
    // Truncated, not yet erased: the bytes are still in the active segment.
    expect(filesHolding(dir, 'SECRET-OF-GONE')).not.toEqual([]);
    const result = await journal.compact();
    expect(filesHolding(dir, 'SECRET-OF-GONE')).toEqual([]);
    expect(result.bytesAfter).toBeLessThan(result.bytesBefore);
    expect((await collect(journal.readFrom('kept', 1))).map((e) => e.message)).toEqual(
      Array.from({ length: 20 }, (_, i) => ({ note: `kept-${i}` })),
    );
    expect(await journal.highestSequenceNr('gone')).toBe(21);
    expect(await journal.append('gone', { secret: 'new life' })).toBe(22);
    expect(await journal.append('kept', 'more')).toBe(21);
    await journal.close();

    journal = await open(dir);
    expect(await collect(journal.readFrom('gone', 1))).toEqual([
      expect.objectContaining({ sequenceNr: 22, message: { secret: 'new life' } }),
    ]);
    expect(
      (await collect(journal.readFrom('gone', 1, { deletions: true }))).map((e) => e.sequenceNr),
    ).toEqual([21, 22]);
    expect(await collect(journal.readFrom('kept', 1))).toHaveLength(21);
    expect((await collect(journal.allEvents())).map((e) => `${e.persistenceId}:${e.sequenceNr}`)).toEqual([
      ...Array.from({ length: 20 }, (_, i) => `kept:${i + 1}`),
      'gone:22',
      'kept:21',
    ]);
    await journal.close();
    expect(filesHolding(dir, 'SECRET-OF-GONE')).toEqual([]);
  });

  it('also rewrites sealed segments that are still mostly live (the background pass leaves those)', async () => {
    const journal = await open(dir, 8192);
    for (let i = 0; i < 60; i++) {
      await journal.append('kept', { note: 'k'.repeat(100) });
      if (i % 10 === 0) await journal.append('gone', { secret: `SECRET-OF-GONE-${i}` });
    }
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.log')).length).toBeGreaterThan(1);
    await journal.deletePersistenceId('gone');
    await journal.compact();
    expect(filesHolding(dir, 'SECRET-OF-GONE')).toEqual([]);
    expect(await collect(journal.readFrom('kept', 1))).toHaveLength(60);
    await journal.close();
  });

  it('a batch followed at once by its marker (one run, part dead) is erased too; a second compact() has nothing to do', async () => {
    const journal = await open(dir);
    await journal.append('kept', 'before');
    await journal.appendBatch(
      'gone',
      Array.from({ length: 10 }, (_, i) => ({ secret: `SECRET-OF-GONE-${i}` })),
    );
    await journal.deletePersistenceId('gone');
    await journal.compact();
    expect(filesHolding(dir, 'SECRET-OF-GONE')).toEqual([]);
    const again = await journal.compact();
    expect(again.bytesAfter).toBe(again.bytesBefore);
    expect(await collect(journal.readFrom('kept', 1))).toHaveLength(1);
    expect(await journal.append('gone', 'x')).toBe(12);
    await journal.close();
  });

  it('a read-only journal refuses to compact, and cairn compact needs the capability', async () => {
    const journal = await open(dir);
    await journal.append('a', 1);
    await journal.close();
    const readOnly = await FileMessageJournal.open({ path: dir, readOnly: true });
    await expect(readOnly.compact()).rejects.toMatchObject({ code: 'ERR_READ_ONLY' });
    await readOnly.close();
  });
});
