import {
  isPersistenceError,
  JournalClosedError,
  type JournalEntry,
  type PersistenceReport,
} from '@cairn/actor-core';
import { LmdbMessageJournal } from '@cairn/journal-lmdb';
import { open } from 'lmdb';
import { useTempDirs } from './temp-dir';

const tempDir = useTempDirs();

async function collect<M>(it: AsyncIterable<JournalEntry<M>>): Promise<JournalEntry<M>[]> {
  const out: JournalEntry<M>[] = [];
  for await (const e of it) out.push(e);
  return out;
}

async function ids(journal: LmdbMessageJournal): Promise<string[]> {
  const out: string[] = [];
  for await (const id of journal.persistenceIds()) out.push(id);
  return out.sort();
}

describe('LmdbMessageJournal', () => {
  it('appends, reads back and survives a reopen', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open<{ n: number }>({ path });
    expect(await journal.append('a', { n: 1 })).toBe(1);
    expect(await journal.appendBatch('a', [{ n: 2 }, { n: 3 }])).toEqual([2, 3]);
    expect(await journal.append('b', { n: 10 })).toBe(1);
    await journal.close();

    const reopened = await LmdbMessageJournal.open<{ n: number }>({ path });
    expect(await reopened.highestSequenceNr('a')).toBe(3);
    expect(await reopened.highestSequenceNr('b')).toBe(1);
    expect(await reopened.highestSequenceNr('nobody')).toBe(0);
    const entries = await collect(reopened.readFrom('a', 1));
    expect(entries.map((e) => [e.sequenceNr, e.message.n])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
    expect(entries[0]!.timestamp).toBeGreaterThan(0);
    expect(await reopened.append('a', { n: 4 })).toBe(4);
    expect(await ids(reopened)).toEqual(['a', 'b']);
    await reopened.close();
  });

  it('keeps ids apart whatever their characters (no key-range overlap)', async () => {
    const journal = await LmdbMessageJournal.open({ path: tempDir() });
    const long = 'x'.repeat(70);
    const tricky = [long, `${long}\u0000\u0010`, 'a', 'a\u0000', 'ab', '\u0001', 'é'];
    for (const id of tricky) await journal.appendBatch(id, [id, id]);
    for (const id of tricky) {
      const read = await collect(journal.readFrom(id, 1));
      expect(read.map((e) => e.message)).toEqual([id, id]);
      expect(await journal.highestSequenceNr(id)).toBe(2);
    }
    expect(await ids(journal)).toEqual([...tricky].sort());
    await journal.close();
  });

  it('honours toSequenceNr and max across pages', async () => {
    const journal = await LmdbMessageJournal.open<number>({ path: tempDir() });
    await journal.appendBatch(
      'p',
      Array.from({ length: 2500 }, (_, i) => i + 1),
    );
    const all = await collect(journal.readFrom('p', 1));
    expect(all.map((e) => e.sequenceNr)).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1));
    expect(all.every((e) => e.message === e.sequenceNr)).toBe(true);
    const some = await collect(journal.readFrom('p', 990, { toSequenceNr: 2100, max: 1050 }));
    expect(some[0]!.sequenceNr).toBe(990);
    expect(some.length).toBe(1050);
    expect(some[some.length - 1]!.sequenceNr).toBe(2039);
    expect(await collect(journal.readFrom('p', 2400, { toSequenceNr: 2402 }))).toHaveLength(3);
    expect(await collect(journal.readFrom('p', 1, { max: 0 }))).toHaveLength(0);
    await journal.close();
  });

  it('truncates durably, never lowers highest, and keeps later appends visible', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open<number>({ path });
    await journal.appendBatch(
      't',
      Array.from({ length: 25_000 }, (_, i) => i + 1),
    );
    await journal.truncateBefore('t', 24_990);
    expect((await collect(journal.readFrom('t', 1))).map((e) => e.sequenceNr)).toEqual(
      Array.from({ length: 11 }, (_, i) => 24_990 + i),
    );
    await journal.truncateBefore('t', Number.MAX_SAFE_INTEGER);
    expect(await collect(journal.readFrom('t', 1))).toEqual([]);
    expect(await journal.highestSequenceNr('t')).toBe(25_000);
    expect(await journal.append('t', 25_001)).toBe(25_001);
    await journal.close();

    const reopened = await LmdbMessageJournal.open<number>({ path });
    expect(await reopened.highestSequenceNr('t')).toBe(25_001);
    expect((await collect(reopened.readFrom('t', 1))).map((e) => e.message)).toEqual([25_001]);
    expect(await ids(reopened)).toEqual(['t']);
    await reopened.close();
    // The deleted keys are really gone from the journal database, not just hidden.
    const raw = open({ path, maxDbs: 4 });
    const db = raw.openDB({ name: 'journal', encoding: 'binary', keyEncoding: 'binary' });
    expect(db.getKeysCount()).toBe(1);
    await raw.close();
  });

  it('refuses a write whose expectedSequenceNr conflicts and writes nothing', async () => {
    const journal = await LmdbMessageJournal.open({ path: tempDir() });
    await journal.append('e', 'one', { expectedSequenceNr: 0 });
    await expect(journal.append('e', 'two', { expectedSequenceNr: 0 })).rejects.toMatchObject({
      code: 'ERR_SEQUENCE_CONFLICT',
    });
    expect(await journal.highestSequenceNr('e')).toBe(1);
    await journal.close();
  });

  it('rejects every call after close and closes idempotently', async () => {
    const journal = await LmdbMessageJournal.open({ path: tempDir() });
    const pending = journal.append('c', 1);
    await journal.close();
    expect(await pending).toBe(1);
    await journal.close();
    await expect(journal.append('c', 2)).rejects.toBeInstanceOf(JournalClosedError);
    await expect(journal.highestSequenceNr('c')).rejects.toBeInstanceOf(JournalClosedError);
  });

  it('rejects bad options with a typed error', async () => {
    await expect(LmdbMessageJournal.open({ path: '' })).rejects.toBeInstanceOf(TypeError);
    await expect(LmdbMessageJournal.open({ path: tempDir(), noSync: 'yes' as never })).rejects.toBeInstanceOf(
      TypeError,
    );
    await expect(LmdbMessageJournal.open({ path: tempDir(), mapSize: -1 })).rejects.toBeInstanceOf(
      RangeError,
    );
    await expect(LmdbMessageJournal.open({ path: tempDir(), maxBatchSize: 0 })).rejects.toBeInstanceOf(
      RangeError,
    );
  });

  it('creates a directory whose name has a dot in it (never taken for a file)', async () => {
    const path = `${tempDir()}/data/journal.lmdb`;
    const journal = await LmdbMessageJournal.open({ path });
    await journal.append('d', 1);
    await journal.close();
    const reopened = await LmdbMessageJournal.open({ path });
    expect(await reopened.highestSequenceNr('d')).toBe(1);
    await reopened.close();
  });

  it('grows the map past its initial size', async () => {
    const path = tempDir();
    const mapSize = 1024 * 1024;
    const journal = await LmdbMessageJournal.open<string>({ path, mapSize });
    const big = 'z'.repeat(10_000);
    for (let i = 0; i < 40; i++)
      await journal.appendBatch(
        'big',
        Array.from({ length: 10 }, () => big),
      );
    expect(await journal.highestSequenceNr('big')).toBe(400);
    await journal.close();
    const { statSync } = await import('node:fs');
    expect(statSync(`${path}/data.mdb`).size).toBeGreaterThan(mapSize);
    const reopened = await LmdbMessageJournal.open<string>({ path, mapSize });
    let count = 0;
    for await (const e of reopened.readFrom('big', 1)) {
      expect(e.message).toBe(big);
      count++;
    }
    expect(count).toBe(400);
    await reopened.close();
  });

  it('reports typed errors through isPersistenceError', async () => {
    const reports: PersistenceReport[] = [];
    const journal = await LmdbMessageJournal.open({ path: tempDir(), reporter: (r) => reports.push(r) });
    await journal.close();
    const e = await journal.append('x', 1).catch((err: unknown) => err);
    expect(isPersistenceError(e, 'ERR_JOURNAL_CLOSED')).toBe(true);
    expect(reports).toEqual([]);
  });
});
