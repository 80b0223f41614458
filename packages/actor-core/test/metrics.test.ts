import {
  LATENCY_BUCKETS_SECONDS,
  type LatencyHistogram,
  MemoryJournalStore,
  MemoryMessageJournal,
  MemorySnapshotStore,
  SnapshotCorruptedError,
} from '@cairn/actor-core';

async function drain<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** Cumulative, one bucket per bound, and never more than the observations. */
function expectWellFormed(histogram: LatencyHistogram, observations: number): void {
  expect(histogram.count).toBe(observations);
  expect(histogram.buckets.map((b) => b.le)).toEqual(LATENCY_BUCKETS_SECONDS);
  const counts = histogram.buckets.map((b) => b.count);
  expect(counts).toEqual([...counts].sort((a, b) => a - b));
  expect(counts[counts.length - 1]).toBeLessThanOrEqual(observations);
  expect(histogram.sum).toBeGreaterThanOrEqual(0);
}

describe('journal metrics', () => {
  it('count appended events, commits, rejections, conflicts, failed commits, reads and the write-ahead lag', async () => {
    const store = new MemoryJournalStore();
    const journal = await MemoryMessageJournal.open({ store });
    expect(journal.metrics()).toMatchObject({ eventsAppended: 0, commits: 0, pendingEvents: 0 });

    await journal.append('a', 'one');
    await journal.appendBatch('a', ['two', 'three']);
    await Promise.all([journal.append('b', 'x'), journal.append('c', 'y')]); // one group commit
    await expect(journal.append('a', () => 1)).rejects.toThrow(/cannot be serialized/);
    await expect(journal.append('a', 'late', { expectedSequenceNr: 1 })).rejects.toThrow(/expected/i);
    journal.faults.failNextWrite();
    await expect(journal.append('d', 'lost')).rejects.toThrow();

    journal.faults.writeDelayMs = 30;
    const slow = journal.appendBatch('e', ['p', 'q', 'r']);
    await new Promise((r) => setTimeout(r, 10));
    expect(journal.metrics().pendingEvents).toBe(3);
    await slow;

    expect(await drain(journal.readFrom('a', 2))).toHaveLength(2);
    const m = journal.metrics();
    expect(m).toMatchObject({
      eventsAppended: 8,
      commits: 4,
      commitFailures: 1,
      serializationRejections: 1,
      sequenceConflicts: 1,
      pendingEvents: 0,
      eventsRead: 2,
      corruptionsDetected: 0,
    });
    expectWellFormed(m.commitSeconds, 5);
    // The slow commit took at least its 30 ms: it is above the 25 ms bound.
    expect(m.commitSeconds.buckets.find((b) => b.le === 0.025)!.count).toBeLessThan(5);
    await journal.close();
  });

  it('count a read that stops at corruption (a sequenceNr missing from storage)', async () => {
    const store = new MemoryJournalStore();
    const journal = await MemoryMessageJournal.open({ store });
    await journal.appendBatch('a', ['1', '2', '3']);
    const log = store.logs.get('a')!;
    log.events.splice(1, 1); // sequenceNr 2 vanishes behind the journal's back
    await expect(drain(journal.readFrom('a', 1))).rejects.toMatchObject({ sequenceNr: 2 });
    expect(journal.metrics()).toMatchObject({ corruptionsDetected: 1, eventsRead: 1 });
    await journal.close();
  });
});

describe('snapshot store metrics', () => {
  it('count saves, loads found and empty, corrupt snapshots skipped, deletions and failed saves', async () => {
    const reported: string[] = [];
    const snapshots = await MemorySnapshotStore.open({ reporter: (r) => reported.push(r.kind) });
    await snapshots.save('a', 1, { n: 1 });
    await snapshots.save('a', 2, { n: 2 });
    await snapshots.save('a', 3, { n: 3 });
    expect((await snapshots.loadLatest('a'))?.sequenceNr).toBe(3);
    expect(await snapshots.loadLatest('nobody')).toBeUndefined();
    snapshots.faults.failNextSnapshotLoad(
      new SnapshotCorruptedError({ persistenceId: 'a', sequenceNr: 3, key: 'a#3', reason: 'injected' }),
    );
    expect((await snapshots.loadLatest('a'))?.sequenceNr).toBe(2);
    expect(reported).toEqual(['snapshot-skipped']);
    snapshots.faults.failNextSnapshotSave();
    await expect(snapshots.save('a', 4, { n: 4 })).rejects.toThrow();
    expect(await snapshots.prune('a', 1)).toBe(2);
    await snapshots.delete('a');
    const m = snapshots.metrics();
    expect(m).toMatchObject({
      saves: 3,
      saveFailures: 1,
      loads: 2,
      loadsEmpty: 1,
      corruptSkipped: 1,
      deleted: 3,
    });
    expectWellFormed(m.saveSeconds, 4);
    expectWellFormed(m.loadSeconds, 3);
    await snapshots.close();
  });
});
