import { LmdbMessageJournal, LmdbSnapshotStore } from '@cairn/journal-lmdb';
import { useTempDirs } from './temp-dir';

const tempDir = useTempDirs();

describe('LmdbSnapshotStore', () => {
  it('saves, replaces, loads by criteria, deletes and prunes; survives a reopen', async () => {
    const path = tempDir();
    const store = await LmdbSnapshotStore.open<{ v: number }>({ path });
    await store.save('s', 10, { v: 10 });
    await store.save('s', 20, { v: 20 });
    await store.save('s', 20, { v: 21 });
    await store.save('s', 30, { v: 30 });
    await store.save('other', 5, { v: 5 });
    expect(await store.loadLatest('s')).toMatchObject({
      persistenceId: 's',
      sequenceNr: 30,
      state: { v: 30 },
    });
    expect(await store.loadLatest('s', { maxSequenceNr: 29 })).toMatchObject({
      sequenceNr: 20,
      state: { v: 21 },
    });
    expect(await store.loadLatest('s', { maxTimestamp: 0 })).toBeUndefined();
    expect(await store.loadLatest('nobody')).toBeUndefined();
    await store.close();

    const reopened = await LmdbSnapshotStore.open<{ v: number }>({ path });
    const latest = await reopened.loadLatest('s');
    expect(latest).toMatchObject({ sequenceNr: 30, state: { v: 30 } });
    expect(latest!.timestamp).toBeGreaterThan(0);
    expect(await reopened.loadLatest('s', { maxTimestamp: latest!.timestamp })).toMatchObject({
      sequenceNr: 30,
    });
    expect(await reopened.prune('s', 2)).toBe(1);
    expect(await reopened.loadLatest('s', { maxSequenceNr: 15 })).toBeUndefined();
    await reopened.delete('s', { maxSequenceNr: 20 });
    expect(await reopened.loadLatest('s', { maxSequenceNr: 29 })).toBeUndefined();
    expect(await reopened.loadLatest('s')).toMatchObject({ sequenceNr: 30 });
    await reopened.delete('s');
    expect(await reopened.loadLatest('s')).toBeUndefined();
    expect(await reopened.prune('unknown', 0)).toBe(0);
    expect(await reopened.loadLatest('other')).toMatchObject({ sequenceNr: 5 });
    await reopened.close();
    await expect(reopened.loadLatest('other')).rejects.toMatchObject({
      name: 'SnapshotStoreClosedError',
      code: 'ERR_SNAPSHOT_STORE_CLOSED',
    });
  });

  it("lists its ids by seeking, page after page, each once, without the journal's ids", async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open<number>({ path });
    const store = await LmdbSnapshotStore.open<number>({ path });
    await journal.appendBatch('events-only', [1]);
    // More ids than one page holds (1000), several snapshots each, ids that prefix one another.
    const ids = Array.from({ length: 2100 }, (_, i) => `id-${i}`);
    await Promise.all(ids.map((id) => Promise.all([1, 2, 3].map((seq) => store.save(id, seq, seq)))));
    const listed: string[] = [];
    for await (const id of store.persistenceIds()) listed.push(id);
    expect(listed).toHaveLength(ids.length);
    expect(new Set(listed)).toEqual(new Set(ids));
    expect(await store.listSnapshots('id-7')).toEqual(
      [1, 2, 3].map((sequenceNr) => ({
        sequenceNr,
        timestamp: expect.any(Number),
      })),
    );
    await store.close();
    await journal.close();
  });

  it('shares one environment with a journal on the same path', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open<number>({ path });
    const store = await LmdbSnapshotStore.open<number>({ path });
    await journal.appendBatch('x', [1, 2, 3]);
    await store.save('x', 3, 6);
    await journal.close();
    // The store keeps working after the journal let go of its reference.
    await store.save('x', 4, 10);
    expect(await store.loadLatest('x')).toMatchObject({ sequenceNr: 4, state: 10 });
    await store.close();

    const reopenedStore = await LmdbSnapshotStore.open<number>({ path });
    const reopenedJournal = await LmdbMessageJournal.open<number>({ path });
    expect(await reopenedJournal.highestSequenceNr('x')).toBe(3);
    expect(await reopenedStore.loadLatest('x')).toMatchObject({ sequenceNr: 4 });
    await Promise.all([reopenedStore.close(), reopenedJournal.close()]);
  });

  it('refuses to share an environment with different durability settings', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open({ path, noSync: true });
    await expect(LmdbSnapshotStore.open({ path })).rejects.toThrow(/noSync: true/);
    await journal.close();
    const store = await LmdbSnapshotStore.open({ path });
    await store.close();
  });

  it('rejects bad arguments without touching storage', async () => {
    const store = await LmdbSnapshotStore.open({ path: tempDir() });
    await expect(store.save('', 1, 1)).rejects.toBeInstanceOf(TypeError);
    await expect(store.save('a', 0, 1)).rejects.toBeInstanceOf(RangeError);
    await expect(store.save('a', 1, () => 1)).rejects.toMatchObject({ code: 'ERR_WRITE_REJECTED' });
    await expect(store.prune('a', -1)).rejects.toBeInstanceOf(RangeError);
    expect(await store.loadLatest('a')).toBeUndefined();
    await store.close();
  });
});
