import type { PersistenceReport } from '@cairn/actor-core';
import { LmdbMessageJournal, LmdbSnapshotStore } from '@cairn/journal-lmdb';
import { open } from 'lmdb';
import { encodeEvent, encodeFormat, entryKey, FORMAT_KEY, idPrefix } from '../src/record-codec';
import { useTempDirs } from './temp-dir';

const tempDir = useTempDirs();

/** Writes a journal database the way a build without the metadata database would have: events only. */
async function writeLegacyJournal(path: string, logs: Record<string, number[]>): Promise<void> {
  const root = open({ path, maxDbs: 4 });
  const journal = root.openDB<Buffer, Buffer>({ name: 'journal', encoding: 'binary', keyEncoding: 'binary' });
  await journal.transaction(() => {
    for (const [id, seqs] of Object.entries(logs)) {
      const prefix = idPrefix(id);
      for (const sequenceNr of seqs) {
        const key = entryKey(prefix, sequenceNr);
        // msgpack of the number: a fixint for small values.
        const payload = Buffer.from([sequenceNr & 0x7f]);
        journal.putSync(
          key,
          encodeEvent(key, { sequenceNr, timestamp: 1_700_000_000_000, serializerId: 1, payload }),
        );
      }
    }
  });
  await root.close();
}

describe('migration (seed 004)', () => {
  it('initialises each id highest from its last key when the metadata database is missing', async () => {
    const path = tempDir();
    await writeLegacyJournal(path, { a: [1, 2, 3], b: [5, 6, 7, 8, 9], [`${'x'.repeat(80)}\u0000`]: [1] });
    const reports: PersistenceReport[] = [];
    const journal = await LmdbMessageJournal.open<number>({ path, reporter: (r) => reports.push(r) });
    expect(reports.map((r) => r.kind)).toEqual(['lmdb-metadata-initialised']);
    expect(reports[0]!.message).toContain('3 persistence id(s)');
    expect(await journal.highestSequenceNr('a')).toBe(3);
    expect(await journal.highestSequenceNr('b')).toBe(9);
    expect(await journal.highestSequenceNr('c')).toBe(0);
    expect(await journal.append('b', 10)).toBe(10);
    const b: number[] = [];
    for await (const e of journal.readFrom('b', 1)) b.push(e.sequenceNr);
    expect(b).toEqual([5, 6, 7, 8, 9, 10]);
    const ids: string[] = [];
    for await (const id of journal.persistenceIds()) ids.push(id);
    expect(ids.sort()).toEqual(['a', 'b', `${'x'.repeat(80)}\u0000`].sort());
    await journal.close();

    // Migrated once: a reopen reports nothing.
    const again = await LmdbMessageJournal.open<number>({ path, reporter: (r) => reports.push(r) });
    expect(reports).toHaveLength(1);
    expect(await again.highestSequenceNr('b')).toBe(10);
    await again.close();
  });

  it('an empty legacy environment starts every id at 0, silently', async () => {
    const path = tempDir();
    await writeLegacyJournal(path, {});
    const reports: PersistenceReport[] = [];
    const journal = await LmdbMessageJournal.open({ path, reporter: (r) => reports.push(r) });
    expect(await journal.highestSequenceNr('a')).toBe(0);
    expect(await journal.append('a', 'first')).toBe(1);
    expect(reports).toEqual([]);
    await journal.close();
  });

  it('a snapshot stored without the Cairn envelope fails to load with SnapshotCorruptedError, by design', async () => {
    const path = tempDir();
    const root = open({ path, maxDbs: 4 });
    const snapshots = root.openDB<Buffer, Buffer>({
      name: 'snapshots',
      encoding: 'binary',
      keyEncoding: 'binary',
    });
    // An older, checksum-less snapshot: just the msgpack of the state.
    await snapshots.put(entryKey(idPrefix('old'), 7), Buffer.from([0x81, 0xa1, 0x6e, 0x07]));
    await root.close();

    const reports: PersistenceReport[] = [];
    const store = await LmdbSnapshotStore.open({ path, reporter: (r) => reports.push(r) });
    expect(await store.loadLatest('old')).toBeUndefined();
    expect(reports).toHaveLength(1);
    expect(reports[0]!.error).toMatchObject({
      name: 'SnapshotCorruptedError',
      persistenceId: 'old',
      sequenceNr: 7,
      key: 'snapshots:old#7',
    });
    // Taking a fresh snapshot is the way out.
    await store.save('old', 8, { n: 8 });
    expect(await store.loadLatest('old')).toMatchObject({ sequenceNr: 8, state: { n: 8 } });
    await store.close();
  });

  it('refuses an environment written by a newer format', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open({ path });
    await journal.close();
    const root = open({ path, maxDbs: 4 });
    const metadata = root.openDB<Buffer, Buffer>({
      name: 'metadata',
      encoding: 'binary',
      keyEncoding: 'binary',
    });
    await metadata.put(FORMAT_KEY, encodeFormat(2));
    await root.close();
    await expect(LmdbMessageJournal.open({ path })).rejects.toMatchObject({
      code: 'ERR_JOURNAL_CORRUPTED',
      reason: expect.stringContaining('format version 2'),
    });
  });
});
