import { readFileSync, writeFileSync } from 'node:fs';
import {
  type JournalCorruptedError,
  type JournalEntry,
  type PersistenceReport,
  SnapshotCorruptedError,
} from '@cairn/actor-core';
import { LmdbMessageJournal, LmdbSnapshotStore } from '@cairn/journal-lmdb';
import { open } from 'lmdb';
import { encodeEvent, encodeNumber, entryKey, HEAD_KEY, idPrefix, metadataKey } from '../src/record-codec';
import { useTempDirs } from './temp-dir';

const tempDir = useTempDirs();

/** A plain lmdb-js handle on one of Cairn's databases, bypassing every Cairn check. */
async function withRawDb(
  path: string,
  name: string,
  body: (db: ReturnType<typeof rawDb>) => void,
): Promise<void> {
  const root = open({ path, maxDbs: 64 });
  try {
    body(rawDb(root, name));
    await root.flushed;
  } finally {
    await root.close();
  }
}
function rawDb(root: ReturnType<typeof open>, name: string) {
  return root.openDB<Buffer, Buffer>({ name, encoding: 'binary', keyEncoding: 'binary' });
}

async function readAll<M>(
  journal: LmdbMessageJournal<M>,
  id: string,
): Promise<{ served: JournalEntry<M>[]; error: unknown }> {
  const served: JournalEntry<M>[] = [];
  try {
    for await (const e of journal.readFrom(id, 1)) served.push(e);
    return { served, error: undefined };
  } catch (error) {
    return { served, error };
  }
}

describe('corruption is detected and named', () => {
  it('a byte flipped inside a stored value (through a raw handle) fails the CRC with the key', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open<string>({ path });
    await journal.appendBatch('acct-1', ['one', 'two', 'three', 'four']);
    await journal.close();

    await withRawDb(path, 'journal', (db) => {
      const key = entryKey(idPrefix('acct-1'), 3);
      const value = Buffer.from(db.get(key)!);
      value[value.length - 2]! ^= 0x01;
      db.putSync(key, value);
    });

    const reopened = await LmdbMessageJournal.open<string>({ path });
    const { served, error } = await readAll(reopened, 'acct-1');
    expect(served.map((e) => e.message)).toEqual(['one', 'two']);
    expect(error).toMatchObject({
      name: 'JournalCorruptedError',
      code: 'ERR_JOURNAL_CORRUPTED',
      persistenceId: 'acct-1',
      sequenceNr: 3,
    });
    const corrupted = error as JournalCorruptedError;
    expect(corrupted.key).toContain('acct-1#3');
    expect(corrupted.reason).toContain('CRC mismatch');
    expect(corrupted.message).toContain('acct-1');
    // A read that starts past the bad record is unaffected.
    const after: string[] = [];
    for await (const e of reopened.readFrom('acct-1', 4)) after.push(e.message);
    expect(after).toEqual(['four']);
    await reopened.close();
  });

  it('a byte flipped in data.mdb itself (bit rot under LMDB) is detected', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open<string>({ path });
    const marker = 'MARKER-0123456789-payload-that-is-unique';
    await journal.appendBatch('rot', ['before', marker, 'after']);
    await journal.close();

    const file = `${path}/data.mdb`;
    const bytes = readFileSync(file);
    const at = bytes.indexOf(Buffer.from(marker));
    expect(at).toBeGreaterThan(0);
    expect(bytes.indexOf(Buffer.from(marker), at + 1)).toBe(-1);
    bytes[at + 10]! ^= 0x20;
    writeFileSync(file, bytes);

    const reopened = await LmdbMessageJournal.open<string>({ path });
    const { served, error } = await readAll(reopened, 'rot');
    expect(served.map((e) => e.message)).toEqual(['before']);
    expect(error).toMatchObject({ code: 'ERR_JOURNAL_CORRUPTED', persistenceId: 'rot', sequenceNr: 2 });
    await reopened.close();
  });

  it('a valid record copied under another key is detected (the key is in the CRC)', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open<string>({ path });
    await journal.appendBatch('k', ['one', 'two']);
    await journal.close();
    await withRawDb(path, 'journal', (db) => {
      const prefix = idPrefix('k');
      db.putSync(entryKey(prefix, 2), db.get(entryKey(prefix, 1))!);
    });
    const reopened = await LmdbMessageJournal.open<string>({ path });
    const { served, error } = await readAll(reopened, 'k');
    expect(served).toHaveLength(1);
    expect(error).toMatchObject({ code: 'ERR_JOURNAL_CORRUPTED', sequenceNr: 2 });
    await reopened.close();
  });

  it('damaged metadata fails highestSequenceNr and appends instead of restarting numbering', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open<string>({ path });
    await journal.appendBatch('m', ['one', 'two']);
    await journal.close();
    await withRawDb(path, 'metadata', (db) => {
      const key = metadataKey('m');
      const value = Buffer.from(db.get(key)!);
      value[6]! ^= 0x40;
      db.putSync(key, value);
    });
    const reopened = await LmdbMessageJournal.open<string>({ path });
    await expect(reopened.highestSequenceNr('m')).rejects.toMatchObject({
      code: 'ERR_JOURNAL_CORRUPTED',
      persistenceId: 'm',
      key: 'metadata:m',
    });
    await expect(reopened.append('m', 'three')).rejects.toMatchObject({ code: 'ERR_JOURNAL_CORRUPTED' });
    await reopened.close();
  });

  it('metadata that lags the journal (a key above highest) is reported, not trusted', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open<string>({ path });
    await journal.appendBatch('lag', ['one', 'two']);
    await journal.close();
    await withRawDb(path, 'journal', (db) => {
      const key = entryKey(idPrefix('lag'), 3);
      db.putSync(
        key,
        encodeEvent(key, { sequenceNr: 3, timestamp: 1, serializerId: 1, payload: Buffer.from([0xc0]) }),
      );
    });
    const reopened = await LmdbMessageJournal.open<string>({ path });
    await expect(reopened.highestSequenceNr('lag')).rejects.toMatchObject({
      code: 'ERR_JOURNAL_CORRUPTED',
      sequenceNr: 3,
    });
    await reopened.close();
  });

  it('a flipped snapshot byte falls back to the older snapshot and reports the newer one', async () => {
    const path = tempDir();
    const reports: PersistenceReport[] = [];
    const store = await LmdbSnapshotStore.open<{ balance: number }>({
      path,
      reporter: (r) => reports.push(r),
    });
    await store.save('s', 10, { balance: 10 });
    await store.save('s', 20, { balance: 20 });
    await store.close();
    await withRawDb(path, 'snapshots', (db) => {
      const key = entryKey(idPrefix('s'), 20);
      const value = Buffer.from(db.get(key)!);
      value[value.length - 6]! ^= 0xff;
      db.putSync(key, value);
    });
    const reopened = await LmdbSnapshotStore.open<{ balance: number }>({
      path,
      reporter: (r) => reports.push(r),
    });
    const loaded = await reopened.loadLatest('s');
    expect(loaded).toMatchObject({ sequenceNr: 10, state: { balance: 10 } });
    expect(reports).toHaveLength(1);
    expect(reports[0]!.kind).toBe('snapshot-skipped');
    expect(reports[0]!.error).toBeInstanceOf(SnapshotCorruptedError);
    expect(reports[0]!.error).toMatchObject({ persistenceId: 's', sequenceNr: 20, key: 'snapshots:s#20' });
    // Never deleted automatically.
    expect(await reopened.prune('s', 5)).toBe(0);
    await withRawDbAfterClose(reopened, path);
  });
});

async function withRawDbAfterClose(store: LmdbSnapshotStore, path: string): Promise<void> {
  await store.close();
  await withRawDb(path, 'snapshots', (db) => {
    expect(db.getKeysCount()).toBe(2);
  });
}

describe('an entry written behind the metadata', () => {
  it('is never overwritten by a later append: the append fails with JournalCorruptedError', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open<string>({ path });
    expect(await journal.append('o', 'mine')).toBe(1);
    // Another process writes event 2 straight into the journal database, skipping the metadata.
    const { execFileSync } = await import('node:child_process');
    const codec = require.resolve('../dist/record-codec.js');
    execFileSync(
      process.execPath,
      [
        '-e',
        `const { open } = require('lmdb');
       const { encodeEvent, entryKey, idPrefix } = require(${JSON.stringify(codec)});
       const root = open({ path: ${JSON.stringify(path)}, maxDbs: 4 });
       const db = root.openDB({ name: 'journal', encoding: 'binary', keyEncoding: 'binary' });
       const key = entryKey(idPrefix('o'), 2);
       db.putSync(key, encodeEvent(key, { sequenceNr: 2, timestamp: 1, serializerId: 1, payload: Buffer.from([0xa5, 0x6f, 0x74, 0x68, 0x65, 0x72]) }));
       root.close();`,
      ],
      { cwd: __dirname },
    );
    await expect(journal.append('o', 'mine too')).rejects.toMatchObject({
      code: 'ERR_JOURNAL_CORRUPTED',
      persistenceId: 'o',
      sequenceNr: 2,
    });
    const read: string[] = [];
    for await (const e of journal.readFrom('o', 1)) read.push(e.message);
    expect(read).toEqual(['mine', 'other']);
    await journal.close();
  });
});

describe('the global order', () => {
  it('a head counter behind the positions index refuses the commit instead of losing index entries', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open<string>({ path });
    await journal.appendBatch('h', ['one', 'two', 'three']);
    await journal.close();
    await withRawDb(path, 'metadata', (db) => db.putSync(HEAD_KEY, encodeNumber(HEAD_KEY, 1)));
    const reopened = await LmdbMessageJournal.open<string>({ path });
    await expect(reopened.append('h', 'four')).rejects.toMatchObject({
      code: 'ERR_JOURNAL_CORRUPTED',
      key: 'metadata:head',
    });
    expect(await reopened.highestSequenceNr('h')).toBe(3);
    const all: string[] = [];
    for await (const e of reopened.allEvents()) all.push(e.message);
    expect(all).toEqual(['one']);
    await reopened.close();
  });

  it('a damaged head record is named by queries', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open<string>({ path });
    await journal.append('h', 'one');
    await journal.close();
    await withRawDb(path, 'metadata', (db) => {
      const value = Buffer.from(db.get(HEAD_KEY)!);
      value[6]! ^= 0x10;
      db.putSync(HEAD_KEY, value);
    });
    const reopened = await LmdbMessageJournal.open<string>({ path });
    await expect(reopened.headOffset()).rejects.toMatchObject({
      code: 'ERR_JOURNAL_CORRUPTED',
      key: 'metadata:head',
    });
    const it = reopened.allEvents()[Symbol.asyncIterator]();
    await expect(it.next()).rejects.toMatchObject({ code: 'ERR_JOURNAL_CORRUPTED', key: 'metadata:head' });
    await reopened.close();
  });

  it('an index entry naming an event the journal lacks is named, not skipped', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open<string>({ path });
    await journal.appendBatch('g', ['one', 'two']);
    await journal.close();
    await withRawDb(path, 'journal', (db) => db.removeSync(entryKey(idPrefix('g'), 2)));
    const reopened = await LmdbMessageJournal.open<string>({ path });
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const e of reopened.allEvents()) seen.push(e.message);
      })(),
    ).rejects.toMatchObject({
      code: 'ERR_JOURNAL_CORRUPTED',
      persistenceId: 'g',
      sequenceNr: 2,
      key: 'positions:2',
    });
    expect(seen).toEqual(['one']);
    await reopened.close();
  });
});
