import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as nodePath from 'node:path';
import { isPersistenceError } from '@cairn/actor-core';
import { LmdbMessageJournal, LmdbSnapshotStore, provider, ReadOnlyError } from '@cairn/journal-lmdb';
import { open } from 'lmdb';
import { encodeEvent, entryKey, idPrefix } from '../src/record-codec';
import { spawnChild } from './child-process';
import { useTempDirs } from './temp-dir';

const tempDir = useTempDirs();

/** The data file's bytes and mtime, and the directory's names: what a read-only open must not change. */
function fingerprint(path: string): { names: string[]; data: Buffer; mtimeNs: bigint } {
  const data = nodePath.join(path, 'data.mdb');
  return {
    names: readdirSync(path).sort(),
    data: readFileSync(data),
    mtimeNs: statSync(data, { bigint: true }).mtimeNs,
  };
}

async function writeSample(path: string): Promise<void> {
  const journal = await LmdbMessageJournal.open<string>({ path });
  const store = await LmdbSnapshotStore.open<string>({ path });
  await journal.appendBatch('a', ['a1', 'a2', 'a3', 'a4']);
  await journal.append('b', 'b1');
  await journal.truncateBefore('a', 2);
  await store.save('a', 3, 'state@3');
  await store.save('a', 4, 'state@4');
  await Promise.all([journal.close(), store.close()]);
}

async function readAll<M>(journal: LmdbMessageJournal<M>, id: string): Promise<Array<[number, M]>> {
  const out: Array<[number, M]> = [];
  for await (const e of journal.readFrom(id, 1)) out.push([e.sequenceNr, e.message]);
  return out;
}

async function expectReadOnly(call: Promise<unknown>): Promise<void> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ReadOnlyError);
  expect(isPersistenceError(error, 'ERR_READ_ONLY')).toBe(true);
}

describe('readOnly: true', () => {
  it('reads what a writable journal and store wrote, refuses every write, and changes no byte of data.mdb', async () => {
    const path = tempDir();
    await writeSample(path);
    const before = fingerprint(path);

    const journal = await LmdbMessageJournal.open<string>({ path, readOnly: true });
    const store = await LmdbSnapshotStore.open<string>({ path, readOnly: true });
    expect(journal.readOnly).toBe(true);
    expect(store.readOnly).toBe(true);
    expect(await journal.highestSequenceNr('a')).toBe(4);
    expect(await journal.highestSequenceNr('b')).toBe(1);
    expect(await journal.highestSequenceNr('never')).toBe(0);
    expect(await readAll(journal, 'a')).toEqual([
      [2, 'a2'],
      [3, 'a3'],
      [4, 'a4'],
    ]);
    const ids: string[] = [];
    for await (const id of journal.persistenceIds()) ids.push(id);
    expect(ids.sort()).toEqual(['a', 'b']);
    expect(await store.loadLatest('a')).toMatchObject({ sequenceNr: 4, state: 'state@4' });
    expect(await store.loadLatest('a', { maxSequenceNr: 3 })).toMatchObject({ state: 'state@3' });

    await expectReadOnly(journal.append('a', 'x'));
    await expectReadOnly(journal.appendBatch('new', ['x', 'y']));
    await expectReadOnly(
      journal.importEntries('new', [{ persistenceId: 'new', sequenceNr: 1, timestamp: 1, message: 'x' }]),
    );
    await expectReadOnly(journal.truncateBefore('a', 4));
    await expectReadOnly(store.save('a', 5, 'x'));
    await expectReadOnly(store.delete('a'));
    await expectReadOnly(store.prune('a', 0));

    // Nothing changed in this process's view either.
    expect(await journal.highestSequenceNr('a')).toBe(4);
    expect(await journal.highestSequenceNr('new')).toBe(0);
    expect((await readAll(journal, 'a')).length).toBe(3);
    await Promise.all([journal.close(), store.close()]);
    // A closed read-only journal answers like any closed journal.
    await expect(journal.append('a', 'x')).rejects.toMatchObject({ code: 'ERR_JOURNAL_CLOSED' });

    expect(fingerprint(path)).toEqual(before);
    // And the data is intact for a writable open afterwards.
    const writable = await LmdbMessageJournal.open<string>({ path });
    expect(await writable.append('a', 'a5')).toBe(5);
    await writable.close();
  });

  it('never creates a missing directory, nor an environment in an empty one', async () => {
    const missing = nodePath.join(tempDir(), 'not-there');
    await expect(LmdbMessageJournal.open({ path: missing, readOnly: true })).rejects.toMatchObject({
      code: 'ERR_STORAGE',
    });
    await expect(LmdbSnapshotStore.open({ path: missing, readOnly: true })).rejects.toMatchObject({
      code: 'ERR_STORAGE',
    });
    expect(existsSync(missing)).toBe(false);

    const empty = tempDir();
    await expect(LmdbMessageJournal.open({ path: empty, readOnly: true })).rejects.toThrow(
      /no LMDB environment/,
    );
    expect(readdirSync(empty)).toEqual([]);
  });

  it('refuses an environment that needs migrating, without migrating it', async () => {
    const path = tempDir();
    // A journal database without the metadata database, as builds before it wrote.
    const root = open({ path, maxDbs: 4 });
    const events = root.openDB<Buffer, Buffer>({
      name: 'journal',
      encoding: 'binary',
      keyEncoding: 'binary',
    });
    const key = entryKey(idPrefix('old'), 1);
    await events.put(
      key,
      encodeEvent(key, { sequenceNr: 1, timestamp: 1, serializerId: 1, payload: Buffer.from([1]) }),
    );
    await root.close();
    const before = fingerprint(path);

    await expect(LmdbMessageJournal.open({ path, readOnly: true })).rejects.toThrow(ReadOnlyError);
    await expect(LmdbMessageJournal.open({ path, readOnly: true })).rejects.toThrow(
      /no metadata, snapshots, positions.* database.*open it once writable/,
    );
    expect(fingerprint(path)).toEqual(before);

    // A writable open migrates it; read-only works from then on.
    await (await LmdbMessageJournal.open({ path, reporter: () => {} })).close();
    const journal = await LmdbMessageJournal.open<number>({ path, readOnly: true });
    expect(await readAll(journal, 'old')).toEqual([[1, 1]]);
    await journal.close();
  });

  it('shares a writable environment open in this process; a writable open cannot share a read-only one', async () => {
    const path = tempDir();
    await writeSample(path);
    const writer = await LmdbMessageJournal.open<string>({ path });
    const reader = await LmdbSnapshotStore.open<string>({ path, readOnly: true });
    await writer.append('b', 'b2');
    expect(await reader.loadLatest('a')).toMatchObject({ state: 'state@4' });
    await expectReadOnly(reader.save('b', 2, 'x'));
    await Promise.all([writer.close(), reader.close()]);

    const readOnly = await LmdbMessageJournal.open<string>({ path, readOnly: true });
    await expect(LmdbSnapshotStore.open({ path })).rejects.toThrow(/readOnly: true/);
    expect(await readAll(readOnly, 'b')).toEqual([
      [1, 'b1'],
      [2, 'b2'],
    ]);
    await readOnly.close();
  });

  it('sees what another process commits while it is open', async () => {
    const path = tempDir();
    await (await LmdbMessageJournal.open({ path })).close();
    const journal = await LmdbMessageJournal.open<{ tag: string; i: number }>({ path, readOnly: true });
    expect(await readAll(journal, 'live')).toEqual([]);

    const child = spawnChild(['contend', path, 'live', '30', 'child']);
    await child.waitForAcks(10);
    // Everything acknowledged so far is committed: a read now serves at least that much, gapless.
    const acked = child.acks.length;
    const seen = await readAll(journal, 'live');
    expect(seen.length).toBeGreaterThanOrEqual(acked);
    expect(seen.map(([seq]) => seq)).toEqual(Array.from({ length: seen.length }, (_, i) => i + 1));
    expect(await child.exited).toBe(0);

    const all = await readAll(journal, 'live');
    expect(all.map(([seq, m]) => [seq, m.tag, m.i])).toEqual(
      Array.from({ length: 30 }, (_, i) => [i + 1, 'child', i]),
    );
    await journal.close();
  });

  it('is accepted by the provider options check, as a boolean only', () => {
    expect(provider.validateOptions?.('journal', { path: 'x', readOnly: true })).toEqual([]);
    expect(provider.validateOptions?.('snapshots', { path: 'x', readOnly: false })).toEqual([]);
    expect(provider.validateOptions?.('journal', { path: 'x', readOnly: 'yes' })).not.toEqual([]);
  });

  it('rejects a non-boolean readOnly before touching anything', async () => {
    const path = nodePath.join(tempDir(), 'x');
    await expect(LmdbMessageJournal.open({ path, readOnly: 1 as unknown as boolean })).rejects.toThrow(
      TypeError,
    );
    expect(existsSync(path)).toBe(false);
  });
});
