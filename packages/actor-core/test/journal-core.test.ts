import {
  AbstractMessageJournal,
  isPersistenceError,
  type JournalWrite,
  MemoryMessageJournal,
  SequenceConflictError,
  type StoredEvent,
  WriteRejectedError,
} from '@cairn/actor-core';

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** A memory-backed journal that records every commit the core hands it. */
class RecordingJournal extends AbstractMessageJournal<unknown> {
  readonly capabilities = { persistent: false };
  readonly recorded: JournalWrite[][] = [];
  readonly data = new Map<string, StoredEvent[]>();
  commitDelayMs = 0;
  failNext: Error | undefined;

  constructor(options: { maxBatchSize?: number; maxBatchDelayMs?: number } = {}) {
    super(options);
  }
  protected async _highestSequenceNr(id: string) {
    return this.data.get(id)?.at(-1)?.sequenceNr ?? 0;
  }
  protected async _write(writes: readonly JournalWrite[]) {
    this.recorded.push([...writes]);
    if (this.commitDelayMs) await new Promise((r) => setTimeout(r, this.commitDelayMs));
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure) throw failure;
    for (const w of writes)
      this.data.set(w.persistenceId, [...(this.data.get(w.persistenceId) ?? []), ...w.events]);
  }
  protected async *_read(id: string, from: number, to: number, max: number) {
    yield (this.data.get(id) ?? []).filter((e) => e.sequenceNr >= from && e.sequenceNr <= to).slice(0, max);
  }
  protected async _truncateBefore() {}
  protected async *_persistenceIds() {
    yield* this.data.keys();
  }
  protected async _close() {}
}

async function untilCommitStarted(journal: RecordingJournal): Promise<void> {
  while (journal.recorded.length === 0) await new Promise((r) => setImmediate(r));
}

describe('group commit', () => {
  it('appends from many ids issued together share one commit', async () => {
    const journal = new RecordingJournal();
    await Promise.all(Array.from({ length: 100 }, (_, i) => journal.append(`id-${i}`, i)));
    expect(journal.recorded).toHaveLength(1);
    expect(journal.recorded[0]).toHaveLength(100);
    await journal.close();
  });

  it('appends arriving while a commit is in flight share the next one', async () => {
    const journal = new RecordingJournal();
    journal.commitDelayMs = 30;
    const first = journal.append('a', 0);
    await untilCommitStarted(journal);
    const rest = Array.from({ length: 50 }, (_, i) => journal.append(`b-${i}`, i));
    await Promise.all([first, ...rest]);
    expect(journal.recorded.map((c) => c.length)).toEqual([1, 50]);
    await journal.close();
  });

  it('a commit never takes more than maxBatchSize entries (a bigger single batch goes alone)', async () => {
    const journal = new RecordingJournal({ maxBatchSize: 10 });
    const calls = Array.from({ length: 25 }, (_, i) => journal.append(`id-${i}`, i));
    calls.push(
      journal
        .appendBatch(
          'big',
          Array.from({ length: 15 }, (_, i) => i),
        )
        .then(() => 0),
    );
    await Promise.all(calls);
    for (const commit of journal.recorded) {
      const size = commit.reduce((n, w) => n + w.events.length, 0);
      expect(size === 15 || size <= 10).toBe(true);
    }
    expect(journal.recorded.flat().reduce((n, w) => n + w.events.length, 0)).toBe(40);
    await journal.close();
  });

  it('a lone append on an idle journal does not wait out maxBatchDelayMs', async () => {
    // With a one-minute delay, this test would time out if the delay applied.
    const journal = new RecordingJournal({ maxBatchDelayMs: 60_000 });
    expect(await journal.append('a', 1)).toBe(1);
    expect(await journal.append('a', 2)).toBe(2);
    await journal.close();
  });

  it('an id is never in two commits at once: its later appends wait for the earlier outcome', async () => {
    const journal = new RecordingJournal({ maxBatchSize: 1 });
    journal.commitDelayMs = 5;
    await Promise.all(Array.from({ length: 20 }, (_, i) => journal.append('same', i)));
    const seqs = journal.recorded.flatMap((c) => c.flatMap((w) => w.events.map((e) => e.sequenceNr)));
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await journal.close();
  });
});

describe('failed commits', () => {
  it('reject every append in the commit, and the numbers are reused, not skipped', async () => {
    const journal = new RecordingJournal();
    journal.failNext = new Error('EIO: disk on fire');
    const results = await Promise.allSettled([journal.append('a', 1), journal.append('b', 1)]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect(isPersistenceError((r as PromiseRejectedResult).reason, 'ERR_STORAGE')).toBe(true);
      expect((r as PromiseRejectedResult).reason.message).toContain('EIO: disk on fire');
    }
    expect(await journal.highestSequenceNr('a')).toBe(0);
    expect(await journal.append('a', 2)).toBe(1);
    await journal.close();
  });

  it('also reject the queued appends of the failed id (numbered after the failed ones)', async () => {
    const journal = new RecordingJournal();
    journal.commitDelayMs = 20;
    journal.failNext = new Error('torn');
    const first = journal.append('a', 'first');
    await untilCommitStarted(journal);
    const queued = journal.append('a', 'second');
    const other = journal.append('b', 'unrelated');
    const outcomes = await Promise.allSettled([first, queued, other]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
    expect(await journal.append('a', 'retry')).toBe(1);
    expect((await collect(journal.readFrom('a', 1))).map((e) => e.message)).toEqual(['retry']);
    await journal.close();
  });

  it("a sequence conflict of one id (another process wrote it) fails that id's appends only", async () => {
    const journal = new RecordingJournal();
    journal.failNext = new SequenceConflictError('a', 0, 3);
    const outcomes = await Promise.allSettled([
      journal.append('a', 1),
      journal.append('b', 1),
      journal.append('c', 1),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
    expect((outcomes[0] as PromiseRejectedResult).reason).toBeInstanceOf(SequenceConflictError);
    // b and c were committed again, on their own.
    expect(journal.recorded.map((c) => c.map((w) => w.persistenceId))).toEqual([
      ['a', 'b', 'c'],
      ['b', 'c'],
    ]);
    await journal.close();
  });

  it('a rejection (WriteRejectedError) passes through unchanged', async () => {
    const journal = new RecordingJournal();
    journal.failNext = new WriteRejectedError('a', 'too big');
    await expect(journal.append('a', 1)).rejects.toBeInstanceOf(WriteRejectedError);
    await journal.close();
  });
});

describe('memory journal fault injection', () => {
  it('failNextWrite fails one commit; the journal carries on', async () => {
    const journal = await MemoryMessageJournal.open();
    journal.faults.failNextWrite();
    await expect(journal.append('x', 1)).rejects.toMatchObject({ code: 'ERR_STORAGE' });
    expect(await journal.append('x', 2)).toBe(1);
    await journal.close();
  });

  it('rejectNextWrite rejects one commit with WriteRejectedError and stores nothing', async () => {
    const journal = await MemoryMessageJournal.open();
    journal.faults.rejectNextWrite('policy');
    await expect(journal.append('x', 1)).rejects.toMatchObject({ code: 'ERR_WRITE_REJECTED' });
    expect(await journal.highestSequenceNr('x')).toBe(0);
    await journal.close();
  });

  it('failNextRead fails a read with a StorageError', async () => {
    const journal = await MemoryMessageJournal.open();
    await journal.append('x', 1);
    journal.faults.failNextRead();
    await expect(collect(journal.readFrom('x', 1))).rejects.toMatchObject({ code: 'ERR_STORAGE' });
    expect(await collect(journal.readFrom('x', 1))).toHaveLength(1);
    await journal.close();
  });

  it('writeDelayMs delays commits, and close still waits for them', async () => {
    const journal = await MemoryMessageJournal.open();
    journal.faults.writeDelayMs = 20;
    const pending = journal.append('x', 1);
    await journal.close();
    expect(await pending).toBe(1);
  });
});

describe('options', () => {
  it('rejects nonsense batching options', async () => {
    await expect(MemoryMessageJournal.open({ maxBatchSize: 0 })).rejects.toThrow(RangeError);
    await expect(MemoryMessageJournal.open({ maxBatchDelayMs: -1 })).rejects.toThrow(RangeError);
    await expect(MemoryMessageJournal.open({ serializer: 'yaml' })).rejects.toThrow(/unknown serializer/);
  });

  it('exposes its batching bounds with the contract defaults', async () => {
    const journal = await MemoryMessageJournal.open();
    expect([journal.maxBatchSize, journal.maxBatchDelayMs]).toEqual([1000, 100]);
    await journal.close();
  });

  it('the json serializer can be chosen, and data written by msgpack still reads', async () => {
    const first = await MemoryMessageJournal.open();
    await first.append('x', { a: 1 });
    await first.close();
    const second = await MemoryMessageJournal.open({ store: first.store, serializer: 'json' });
    await second.append('x', { b: 2 });
    expect((await collect(second.readFrom('x', 1))).map((e) => e.message)).toEqual([{ a: 1 }, { b: 2 }]);
    await second.close();
  });
});

describe('missing sequence numbers are corruption, never skipped', () => {
  async function journalWith(count: number) {
    const journal = await MemoryMessageJournal.open();
    await journal.appendBatch(
      'x',
      Array.from({ length: count }, (_, i) => i + 1),
    );
    return journal;
  }
  const logOf = (journal: MemoryMessageJournal) => journal.store.logs.get('x')!;

  it('a hole in the middle rejects the read at the first missing number', async () => {
    const journal = await journalWith(10);
    logOf(journal).events.splice(4, 2); // 5 and 6 vanish behind the journal's back
    const served: number[] = [];
    const error = await (async () => {
      for await (const e of journal.readFrom('x', 1)) served.push(e.sequenceNr);
    })().catch((e: unknown) => e);
    expect(served).toEqual([1, 2, 3, 4]);
    expect(error).toMatchObject({ code: 'ERR_JOURNAL_CORRUPTED', persistenceId: 'x', sequenceNr: 5 });
    await journal.close();
  });

  it('a missing tail rejects the read', async () => {
    const journal = await journalWith(10);
    logOf(journal).events.splice(8, 2);
    await expect(collect(journal.readFrom('x', 1))).rejects.toMatchObject({ sequenceNr: 9 });
    await expect(collect(journal.readFrom('x', 9))).rejects.toMatchObject({ sequenceNr: 9 });
    // A range that stops before the damage reads fine.
    expect((await collect(journal.readFrom('x', 1, { toSequenceNr: 8 }))).length).toBe(8);
    await journal.close();
  });

  it('a gap across pages is caught as well', async () => {
    const journal = await journalWith(700);
    logOf(journal).events.splice(255, 1); // the first entry of the second 256-entry page
    await expect(collect(journal.readFrom('x', 1))).rejects.toMatchObject({ sequenceNr: 256 });
    await journal.close();
  });

  it('numbers removed by truncation are not reported missing', async () => {
    const journal = await journalWith(10);
    await journal.truncateBefore('x', 4);
    expect((await collect(journal.readFrom('x', 1))).map((e) => e.sequenceNr)).toEqual([
      4, 5, 6, 7, 8, 9, 10,
    ]);
    await journal.truncateBefore('x', Number.MAX_SAFE_INTEGER);
    expect(await collect(journal.readFrom('x', 1))).toEqual([]);
    await journal.close();
  });
});

describe('importEntries (for copy and restore tools)', () => {
  const entry = (sequenceNr: number, timestamp = 1_000 + sequenceNr) => ({
    persistenceId: 'x',
    sequenceNr,
    timestamp,
    tags: [] as string[],
    message: { n: sequenceNr },
  });

  it('keeps the given sequence numbers and timestamps', async () => {
    const journal = await MemoryMessageJournal.open();
    await journal.importEntries('x', [entry(1), entry(2)]);
    await journal.importEntries('x', [entry(3, 5)]);
    expect(await collect(journal.readFrom('x', 1))).toEqual([entry(1), entry(2), entry(3, 5)]);
    expect(await journal.append('x', { n: 4 })).toBe(4);
    await journal.close();
  });

  it('importTruncated claims its numbers at once: an append issued while it is written comes after', async () => {
    const journal = await MemoryMessageJournal.open();
    journal.faults.writeDelayMs = 20;
    const imported = journal.importTruncated('x', 5);
    await new Promise((r) => setTimeout(r, 5)); // the record of the highest is being written
    const appended = journal.append('x', 'after');
    await imported;
    expect(await appended).toBe(6);
    expect(await journal.highestSequenceNr('x')).toBe(6);
    expect((await collect(journal.readFrom('x', 1))).map((e) => e.sequenceNr)).toEqual([6]);
    await journal.close();
  });

  it('importTruncated refuses an id that has events, and a failed record leaves the id as it was', async () => {
    const journal = await MemoryMessageJournal.open();
    await journal.append('x', 'first');
    await expect(journal.importTruncated('x', 9)).rejects.toThrow(/already has highestSequenceNr 1/);
    journal.faults.failNextWrite();
    await expect(journal.importTruncated('y', 9)).rejects.toThrow();
    expect(await journal.highestSequenceNr('y')).toBe(0);
    expect(await journal.append('y', 'first')).toBe(1);
    await journal.close();
  });

  it('refuses entries that do not continue the highest exactly, or are not consecutive, writing nothing', async () => {
    const journal = await MemoryMessageJournal.open();
    await journal.append('x', 'first');
    await expect(journal.importEntries('x', [entry(1)])).rejects.toThrow(/must start at 2/);
    await expect(journal.importEntries('x', [entry(3)])).rejects.toThrow(RangeError);
    await expect(journal.importEntries('x', [entry(2), entry(4)])).rejects.toThrow(/consecutive/);
    await expect(journal.importEntries('x', [{ ...entry(2), persistenceId: 'y' }])).rejects.toThrow(
      /belongs to/,
    );
    await expect(journal.importEntries('x', [])).rejects.toThrow(RangeError);
    await expect(journal.importEntries('x', [entry(2, -1)])).rejects.toThrow(RangeError);
    expect(await journal.highestSequenceNr('x')).toBe(1);
    await journal.close();
  });
});
