import {
  isPersistenceError,
  MemoryJournalStore,
  MemoryMessageJournal,
  MemorySnapshotData,
  MemorySnapshotStore,
} from '@cairn/actor-core';

/**
 * Read-only is the core's rule: a backend only opens its storage read-only and declares it can. The
 * memory backend has no read-only code of its own, so these refusals come from the base classes.
 */
describe('read-only, enforced by the base classes', () => {
  it('a journal opened read-only reads what is there and refuses every write, changing nothing', async () => {
    const store = new MemoryJournalStore();
    const writer = await MemoryMessageJournal.open({ store });
    await writer.appendBatch('a', ['x', 'y']);
    const reader = await MemoryMessageJournal.open({ store, readOnly: true, path: '/data/journal' });
    expect(reader.capabilities.readOnly).toBe(true);
    expect(reader.readOnly).toBe(true);
    const writes: Array<[string, () => Promise<unknown>]> = [
      ['append', () => reader.append('a', 'z')],
      ['appendBatch', () => reader.appendBatch('b', ['z'])],
      ['truncateBefore', () => reader.truncateBefore('a', 2)],
      [
        'importEntries',
        () => reader.importEntries('c', [{ persistenceId: 'c', sequenceNr: 1, timestamp: 1, message: 1 }]),
      ],
      ['importTruncated', () => reader.importTruncated('d', 3)],
    ];
    for (const [operation, write] of writes) {
      const error = await write().catch((e: unknown) => e);
      expect(isPersistenceError(error, 'ERR_READ_ONLY')).toBe(true);
      expect((error as Error).message).toContain('/data/journal');
      expect((error as Error).message).toContain(`${operation} refused`);
    }
    expect(await reader.highestSequenceNr('a')).toBe(2);
    expect(await writer.highestSequenceNr('b')).toBe(0);
    expect((await writer.metrics()).eventsAppended).toBe(2);
    await reader.close();
    await writer.close();
  });

  it('a snapshot store opened read-only loads and refuses save, delete and prune', async () => {
    const data = new MemorySnapshotData();
    const writer = await MemorySnapshotStore.open({ store: data });
    await writer.save('a', 1, 'one');
    const reader = await MemorySnapshotStore.open({ store: data, readOnly: true });
    for (const write of [
      () => reader.save('a', 2, 'two'),
      () => reader.delete('a'),
      () => reader.prune('a', 0),
    ]) {
      await expect(write()).rejects.toMatchObject({ code: 'ERR_READ_ONLY', name: 'ReadOnlyError' });
    }
    expect((await reader.loadLatest('a'))?.state).toBe('one');
    await reader.close();
    await writer.close();
  });

  it('rejects a readOnly that is not a boolean', async () => {
    await expect(MemoryMessageJournal.open({ readOnly: 'yes' as unknown as boolean })).rejects.toThrow(
      TypeError,
    );
    await expect(MemorySnapshotStore.open({ readOnly: 1 as unknown as boolean })).rejects.toThrow(TypeError);
  });
});
