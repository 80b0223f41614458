import type { PersistenceReport } from '@cairn/actor-core';
import { LmdbMessageJournal, LmdbSnapshotStore } from '@cairn/journal-lmdb';
import { open } from 'lmdb';
import {
  encodeFormat,
  encodeIdMetadata,
  encodeNumber,
  entryKey,
  FORMAT_KEY,
  idPrefix,
  metadataKey,
  readPosition,
  truncatingKey,
} from '../src/record-codec';
import { rawEntries, writeFormat1, writeWithoutMetadata } from './legacy-records';
import { useTempDirs } from './temp-dir';

const tempDir = useTempDirs();

describe('migration (the hardening plan)', () => {
  it('initialises each id highest from its last key when the metadata database is missing', async () => {
    const path = tempDir();
    await writeWithoutMetadata(path, { a: [1, 2, 3], b: [5, 6, 7, 8, 9], [`${'x'.repeat(80)}\u0000`]: [1] });
    const reports: PersistenceReport[] = [];
    const journal = await LmdbMessageJournal.open<number>({ path, reporter: (r) => reports.push(r) });
    expect(reports.map((r) => r.kind)).toEqual(['lmdb-metadata-initialised', 'lmdb-global-order-assigned']);
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
    expect(reports).toHaveLength(2);
    expect(await again.highestSequenceNr('b')).toBe(10);
    await again.close();
  });

  it('an empty legacy environment starts every id at 0, silently', async () => {
    const path = tempDir();
    await writeWithoutMetadata(path, {});
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
    await metadata.put(FORMAT_KEY, encodeFormat(3));
    await root.close();
    await expect(LmdbMessageJournal.open({ path })).rejects.toMatchObject({
      code: 'ERR_JOURNAL_CORRUPTED',
      reason: expect.stringContaining('format version 3'),
    });
  });
});

/** The global order as stored: [position, "id#sequenceNr"] from the positions database. */
async function storedOrder(path: string): Promise<Array<[number, string]>> {
  return (await rawEntries(path, 'positions')).map(([key, value]) => {
    const idLength = value.readUInt16BE(0);
    const id = value.toString('utf8', 2, 2 + idLength);
    return [readPosition(key), `${id}#${readPosition(value, 2 + idLength)}`];
  });
}

describe('upgrade from format 1 (before the global order)', () => {
  it('gives the old events positions once, by timestamp, id and sequenceNr, keeping each id in order', async () => {
    const path = tempDir();
    await writeFormat1(
      path,
      {
        b: [
          { sequenceNr: 1, timestamp: 200 },
          { sequenceNr: 2, timestamp: 200 },
          // A clock that stepped back: still after b#2.
          { sequenceNr: 3, timestamp: 50 },
        ],
        a: [
          { sequenceNr: 1, timestamp: 100 },
          { sequenceNr: 2, timestamp: 300 },
        ],
        // Truncated below 3 (one key left behind by an unfinished delete): no position for it.
        t: [
          { sequenceNr: 2, timestamp: 10 },
          { sequenceNr: 3, timestamp: 400 },
        ],
      },
      { t: 3 },
    );
    const reports: PersistenceReport[] = [];
    const journal = await LmdbMessageJournal.open<number>({ path, reporter: (r) => reports.push(r) });
    expect(reports.map((r) => r.kind)).toEqual(['lmdb-global-order-assigned']);
    expect(reports[0]!.message).toContain('6 event(s)');
    // New events continue the order after the old ones.
    await journal.append('a', 3);
    await journal.close();
    expect(await storedOrder(path)).toEqual([
      [1, 'a#1'],
      [2, 'b#1'],
      [3, 'b#2'],
      [4, 'b#3'],
      [5, 'a#2'],
      [6, 't#3'],
      [7, 'a#3'],
    ]);

    // Once: a reopen assigns nothing again and reports nothing.
    const again = await LmdbMessageJournal.open<number>({ path, reporter: (r) => reports.push(r) });
    expect(reports).toHaveLength(1);
    const a: number[] = [];
    for await (const e of again.readFrom('a', 1)) a.push(e.message);
    expect(a).toEqual([1, 2, 3]);
    await again.close();
    // The old records were not rewritten: still version 1 under their old keys.
    const journalDb = await rawEntries(path, 'journal');
    const versions = Object.fromEntries(
      journalDb.map(([key, value]) => [
        `${key.toString('utf8', 2, 2 + key.readUInt16BE(0))}#${key.readUInt32BE(key.length - 4)}`,
        value[4],
      ]),
    );
    expect(versions).toMatchObject({ 'a#1': 1, 'a#2': 1, 'a#3': 2, 'b#1': 1, 'b#3': 1, 't#3': 1 });
  });

  it('a format-2 environment carries format 2, which a format-1 build refuses before writing anything', async () => {
    const path = tempDir();
    await (await LmdbMessageJournal.open({ path })).close();
    const format = (await rawEntries(path, 'metadata')).find(([key]) => key.equals(FORMAT_KEY));
    expect(format?.[1].readUInt32LE(5)).toBe(2);
  });
});

describe('a format-1 environment opened read-only', () => {
  it('is refused with ReadOnlyError until a writable open upgraded it', async () => {
    const path = tempDir();
    await writeFormat1(path, { a: [{ sequenceNr: 1, timestamp: 1 }] });
    await expect(LmdbMessageJournal.open({ path, readOnly: true })).rejects.toMatchObject({
      code: 'ERR_READ_ONLY',
      message: expect.stringMatching(
        /no positions, tags, legacyPositions, offsets database.*open it once writable/,
      ),
    });
    await (await LmdbMessageJournal.open({ path, reporter: () => {} })).close();
    const journal = await LmdbMessageJournal.open<number>({ path, readOnly: true });
    const read: number[] = [];
    for await (const e of journal.readFrom('a', 1)) read.push(e.message);
    expect(read).toEqual([1]);
    await journal.close();
  });
});

describe('queries over events stored before the global order', () => {
  async function upgraded(path: string): Promise<LmdbMessageJournal<number>> {
    await writeFormat1(path, {
      b: [
        { sequenceNr: 1, timestamp: 200 },
        { sequenceNr: 2, timestamp: 250 },
        { sequenceNr: 3, timestamp: 500 },
      ],
      a: [
        { sequenceNr: 1, timestamp: 100 },
        { sequenceNr: 2, timestamp: 300 },
      ],
    });
    return LmdbMessageJournal.open<number>({ path, reporter: () => {} });
  }
  const label = (e: { persistenceId: string; sequenceNr: number }) => `${e.persistenceId}#${e.sequenceNr}`;

  it('allEvents serves the old events in their fixed order with tags [], then new ones', async () => {
    const path = tempDir();
    const journal = await upgraded(path);
    await journal.append('a', 3, { tags: ['new'] });
    const all: string[] = [];
    for await (const e of journal.allEvents()) {
      all.push(label(e));
      expect(e.tags).toEqual(e.persistenceId === 'a' && e.sequenceNr === 3 ? ['new'] : []);
      expect(e.message).toBe(e.sequenceNr);
    }
    expect(all).toEqual(['a#1', 'b#1', 'b#2', 'a#2', 'b#3', 'a#3']);
    const tagged: string[] = [];
    for await (const e of journal.eventsByTag('new')) tagged.push(label(e));
    expect(tagged).toEqual(['a#3']);
    await journal.close();
  });

  it('eventsByPersistenceId resumes after any offset of the journal, old events included', async () => {
    const path = tempDir();
    const journal = await upgraded(path);
    await journal.append('b', 4);
    const offsets = new Map<string, string>();
    for await (const e of journal.allEvents()) offsets.set(label(e), e.offset);
    // a#2 sits between b#2 and b#3 in the global order.
    const after = async (offset: string) => {
      const got: string[] = [];
      for await (const e of journal.eventsByPersistenceId('b', { after: offset })) got.push(label(e));
      return got;
    };
    expect(await after(offsets.get('a#2')!)).toEqual(['b#3', 'b#4']);
    expect(await after(offsets.get('a#1')!)).toEqual(['b#1', 'b#2', 'b#3', 'b#4']);
    expect(await after(offsets.get('b#2')!)).toEqual(['b#3', 'b#4']);
    expect(await after(offsets.get('b#4')!)).toEqual([]);
    await journal.close();
  });

  it('truncating old events removes them and their positions from every query', async () => {
    const path = tempDir();
    const journal = await upgraded(path);
    const offsets = new Map<string, string>();
    for await (const e of journal.allEvents()) offsets.set(label(e), e.offset);
    await journal.truncateBefore('b', 3);
    const all: string[] = [];
    for await (const e of journal.allEvents()) all.push(label(e));
    expect(all).toEqual(['a#1', 'a#2', 'b#3']);
    const resumed: string[] = [];
    for await (const e of journal.allEvents({ after: offsets.get('b#1')! })) resumed.push(label(e));
    expect(resumed).toEqual(['a#2', 'b#3']);
    await journal.close();
    expect((await rawEntries(path, 'legacyPositions')).length).toBe(3);
    expect((await rawEntries(path, 'positions')).length).toBe(3);
  });
});

describe('a truncation interrupted after its low-water mark', () => {
  it('index reads skip the id below the mark; the next writable open finishes the deletes', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open<number>({ path });
    await journal.appendBatch('x', [1, 2, 3, 4, 5, 6], { tags: ['t'] });
    await journal.append('y', 1, { tags: ['t'] });
    await journal.close();
    // What the truncation's first transaction leaves before its deletes run: the mark and the marker.
    const root = open({ path, maxDbs: 64 });
    const metadata = root.openDB<Buffer, Buffer>({
      name: 'metadata',
      encoding: 'binary',
      keyEncoding: 'binary',
    });
    const key = metadataKey('x');
    await metadata.put(key, encodeIdMetadata(key, { highest: 6, lowWater: 5 }));
    const marker = truncatingKey('x');
    await metadata.put(marker, encodeNumber(marker, 5));
    await root.close();

    const reader = await LmdbMessageJournal.open<number>({ path, readOnly: true });
    const label = (e: { persistenceId: string; sequenceNr: number }) => `${e.persistenceId}#${e.sequenceNr}`;
    const all: string[] = [];
    for await (const e of reader.allEvents()) all.push(label(e));
    expect(all).toEqual(['x#5', 'x#6', 'y#1']);
    const tagged: string[] = [];
    for await (const e of reader.eventsByTag('t')) tagged.push(label(e));
    expect(tagged).toEqual(['x#5', 'x#6', 'y#1']);
    await reader.close();
    expect((await rawEntries(path, 'positions')).length).toBe(7);

    await (await LmdbMessageJournal.open({ path })).close();
    expect((await rawEntries(path, 'positions')).length).toBe(3);
    expect((await rawEntries(path, 'tags')).length).toBe(3);
    expect((await rawEntries(path, 'journal')).length).toBe(3);
    const markers = (await rawEntries(path, 'metadata')).filter(([k]) => k[0] === 0x02);
    expect(markers).toEqual([]);
  });
});
