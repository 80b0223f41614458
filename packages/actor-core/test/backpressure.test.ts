import {
  BackpressureError,
  createPersistence,
  isPersistenceError,
  MemoryFaults,
  MemoryMessageJournal,
} from '../src';

/** Settles pending microtasks and timers of zero delay. */
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('backpressure (maxPendingEvents, maxPendingBytes, onBackpressure)', () => {
  test("'wait': appends past the bound wait for room, pending never passes it, every append lands in order", async () => {
    const faults = new MemoryFaults();
    faults.writeDelayMs = 30;
    const journal = await MemoryMessageJournal.open<number>({
      faults,
      maxPendingEvents: 10,
      maxBatchSize: 4,
    });
    try {
      let maxPending = 0;
      const sample = () => {
        maxPending = Math.max(maxPending, journal.metrics().pendingEvents);
      };
      const appends: Promise<number>[] = [];
      for (let i = 0; i < 50; i++) {
        appends.push(journal.append(`id-${i % 3}`, i));
        sample();
      }
      // 50 issued against a bound of 10 (once the ids' highest is loaded): most wait, unnumbered.
      await tick();
      sample();
      expect(journal.metrics().pendingEvents).toBeLessThanOrEqual(10);
      expect(journal.metrics().backpressureWaiting).toBeGreaterThanOrEqual(40);
      const timer = setInterval(sample, 1);
      try {
        const seqs = await Promise.all(appends);
        // Per id, sequence numbers follow issue order.
        for (let id = 0; id < 3; id++) {
          const own = seqs.filter((_, i) => i % 3 === id);
          expect(own).toEqual(own.map((_, k) => k + 1));
        }
      } finally {
        clearInterval(timer);
      }
      expect(maxPending).toBeLessThanOrEqual(10);
      const m = journal.metrics();
      expect(m.backpressureWaits).toBeGreaterThanOrEqual(40);
      expect(m.backpressureWaiting).toBe(0);
      expect(m.pendingEvents).toBe(0);
      expect(m.pendingBytes).toBe(0);
      expect(m.eventsAppended).toBe(50);
      for (let id = 0; id < 3; id++) {
        const read: number[] = [];
        for await (const e of journal.readFrom(`id-${id}`, 1)) read.push(e.message);
        expect(read).toEqual([...Array(50).keys()].filter((i) => i % 3 === id));
      }
    } finally {
      await journal.close();
    }
  });

  test("'wait': the byte bound applies too, and highestSequenceNr waits for an append that waits for room", async () => {
    const faults = new MemoryFaults();
    faults.writeDelayMs = 20;
    const journal = await MemoryMessageJournal.open<string>({ faults, maxPendingBytes: 1000 });
    try {
      const big = 'x'.repeat(400);
      const appends = [0, 1, 2, 3, 4].map(() => journal.append('a', big));
      await tick();
      expect(journal.metrics().pendingBytes).toBeLessThanOrEqual(1000);
      expect(journal.metrics().backpressureWaiting).toBeGreaterThan(0);
      // Issued after the waiting appends: answers with all of them.
      expect(await journal.highestSequenceNr('a')).toBe(5);
      expect(await Promise.all(appends)).toEqual([1, 2, 3, 4, 5]);
    } finally {
      await journal.close();
    }
  });

  test("'reject': an append past the bound rejects with BackpressureError, nothing numbered or stored", async () => {
    const faults = new MemoryFaults();
    faults.writeDelayMs = 30;
    const journal = await MemoryMessageJournal.open<number>({
      faults,
      maxPendingEvents: 5,
      onBackpressure: 'reject',
    });
    try {
      const results = await Promise.allSettled([...Array(8).keys()].map((i) => journal.append('r', i)));
      const stored = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
      const refused = results.filter((r) => r.status === 'rejected').map((r) => r.reason as Error);
      expect(stored).toEqual([1, 2, 3, 4, 5]);
      expect(refused).toHaveLength(3);
      for (const e of refused) {
        expect(e).toBeInstanceOf(BackpressureError);
        expect(isPersistenceError(e, 'ERR_BACKPRESSURE')).toBe(true);
        expect(e.message).toMatch(/maxPendingEvents 5/);
      }
      expect(journal.metrics().backpressureRejections).toBe(3);
      // The refused ones took no numbers: the next append continues at 6.
      expect(await journal.append('r', 99)).toBe(6);
      const read: number[] = [];
      for await (const e of journal.readFrom('r', 1)) read.push(e.message);
      expect(read).toEqual([0, 1, 2, 3, 4, 99]);
    } finally {
      await journal.close();
    }
  });

  test('one append larger than the bound on its own is committed alone, not refused forever', async () => {
    const journal = await MemoryMessageJournal.open<number>({
      maxPendingEvents: 3,
      onBackpressure: 'reject',
    });
    try {
      expect(await journal.appendBatch('big', [1, 2, 3, 4, 5, 6])).toEqual([1, 2, 3, 4, 5, 6]);
    } finally {
      await journal.close();
    }
  });

  test('close() and flush() wait for appends that wait for room; memory stays bounded under a slow disk', async () => {
    const faults = new MemoryFaults();
    faults.writeDelayMs = 5;
    const journal = await MemoryMessageJournal.open<string>({
      faults,
      maxPendingEvents: 100,
      maxBatchSize: 50,
    });
    const payload = 'p'.repeat(1000);
    const appends: Promise<number>[] = [];
    let maxBytes = 0;
    // 5,000 appends of 1 kB issued at once against a disk committing 50 every 5 ms: at most 100 (100 kB)
    // are held for commits; the rest wait unnumbered.
    for (let i = 0; i < 5000; i++) appends.push(journal.append(`m-${i % 7}`, payload));
    for (let i = 0; i < 20; i++) {
      maxBytes = Math.max(maxBytes, journal.metrics().pendingBytes);
      await tick();
    }
    await journal.flush();
    expect(journal.metrics().eventsAppended).toBe(5000);
    expect(maxBytes).toBeLessThanOrEqual(100 * 1003);
    const late = journal.append('late', payload);
    await journal.close();
    expect(await late).toBe(1);
    expect((await Promise.all(appends)).length).toBe(5000);
  });

  test('the options are checked by open() and by the config path', async () => {
    await expect(MemoryMessageJournal.open({ maxPendingEvents: 0 })).rejects.toThrow(RangeError);
    await expect(MemoryMessageJournal.open({ onBackpressure: 'drop' as unknown as 'wait' })).rejects.toThrow(
      /onBackpressure/,
    );
    await expect(
      createPersistence({
        journal: { provider: 'memory', onBackpressure: 'drop' },
        snapshots: { provider: 'memory' },
      }),
    ).rejects.toThrow(/onBackpressure/);
    const p = await createPersistence({
      journal: { provider: 'memory', maxPendingEvents: 10, maxPendingBytes: 4096, onBackpressure: 'reject' },
      snapshots: { provider: 'memory' },
    });
    await p.close();
  });
});
