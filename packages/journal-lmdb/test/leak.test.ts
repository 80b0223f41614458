import { LmdbMessageJournal, LmdbSnapshotStore } from '@cairn/journal-lmdb';
import { captureResources, expectNoLeakedResources } from '@cairn/testkit';
import { useTempDirs } from './temp-dir';

const tempDir = useTempDirs();

describe('resources after close()', () => {
  it('1,000 open/write/close cycles of a journal and a snapshot store leave no fd, handle or timer behind', async () => {
    const path = tempDir();
    // Warm-up: lmdb-js loads its native addon and starts nothing per process that close() would release.
    const warm = await LmdbMessageJournal.open({ path });
    await warm.append('warm', 0);
    await warm.close();

    const before = captureResources();
    for (let i = 0; i < 1000; i++) {
      const journal = await LmdbMessageJournal.open<number>({ path });
      const store = await LmdbSnapshotStore.open<number>({ path });
      // A write on every tenth cycle (each one a synced commit); reads on every cycle.
      if (i % 10 === 0) {
        await journal.append('cycle', i);
        await store.save('cycle', i + 1, i);
      }
      for await (const _ of journal.readFrom('cycle', 1, { max: 2 })) {
        // drain
      }
      await store.loadLatest('cycle');
      await Promise.all([journal.close(), store.close()]);
    }
    await expectNoLeakedResources(before);

    const journal = await LmdbMessageJournal.open<number>({ path });
    expect(await journal.highestSequenceNr('cycle')).toBe(100);
    await journal.close();
  });

  it('a reader abandoned mid-iteration does not keep the environment open after close()', async () => {
    const path = tempDir();
    const before = captureResources();
    const journal = await LmdbMessageJournal.open<number>({ path });
    await journal.appendBatch(
      'r',
      Array.from({ length: 3000 }, (_, i) => i),
    );
    const it = journal.readFrom('r', 1)[Symbol.asyncIterator]();
    await it.next();
    await it.return?.();
    await journal.close();
    await expectNoLeakedResources(before);
  });

  it('read-only opens and closes leave nothing behind', async () => {
    const path = tempDir();
    const writer = await LmdbMessageJournal.open<number>({ path });
    await writer.append('ro', 1);
    await writer.close();
    const before = captureResources();
    for (let i = 0; i < 100; i++) {
      const journal = await LmdbMessageJournal.open<number>({ path, readOnly: true });
      const store = await LmdbSnapshotStore.open<number>({ path, readOnly: true });
      for await (const _ of journal.readFrom('ro', 1)) {
        // drain
      }
      await store.loadLatest('ro');
      await Promise.all([journal.close(), store.close()]);
    }
    await expectNoLeakedResources(before);
  });

  it('live queries (and the one timer that polls for other processes) end with break or close', async () => {
    const path = tempDir();
    const writer = await LmdbMessageJournal.open<number>({ path });
    await writer.append('live', 1);
    const before = captureResources();
    for (let i = 0; i < 20; i++) {
      const journal = await LmdbMessageJournal.open<number>({ path, readOnly: true });
      const broken = (async () => {
        for await (const e of journal.allEvents({ live: true })) if (e.sequenceNr === 2 + i) break;
      })();
      const waiting = journal.eventsByTag('t', { live: true })[Symbol.asyncIterator]().next();
      // Written by another journal (as by another process): only the poll tells the reader.
      await writer.append('live', 2 + i);
      await broken;
      await journal.close();
      await expect(waiting).rejects.toMatchObject({ code: 'ERR_JOURNAL_CLOSED' });
    }
    await expectNoLeakedResources(before);
    await writer.close();
  });
});
