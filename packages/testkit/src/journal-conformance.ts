import {
  canFlush,
  canImport,
  canQuery,
  isPersistenceError,
  JournalClosedError,
  type JournalEntry,
  type MessageJournal,
  SequenceConflictError,
} from '@cairn/actor-core';
import {
  type CaseContext,
  collect,
  type FactoryContext,
  freshId,
  type RunnerOption,
  registerCase,
  runnerOf,
} from './conformance-context';
import { journalDeletionGroup } from './journal-deletion';
import { journalModelGroup } from './journal-model';
import { journalQueryGroup } from './journal-query';
import { journalQueryModelGroup } from './journal-query-model';

export interface JournalConformanceOptions extends RunnerOption {
  /** Shown in the suite's title, e.g. "file (fsync on)". */
  readonly name: string;
  /** Opens a journal on `dir`; called again with the same dir after close() it must reopen the same data. */
  readonly create: (ctx: FactoryContext) => Promise<MessageJournal<unknown>>;
  /** Number of random command sequences in the model-based group. Default 25. */
  readonly modelRuns?: number;
  /** Number of random programs in the query model group (each with live readers). Default 10. */
  readonly queryModelRuns?: number;
}

/** Everything one case gets: the journal under test, a fresh id, and the case's context. */
export interface JournalCase {
  readonly journal: MessageJournal<unknown>;
  readonly id: string;
  readonly ctx: CaseContext<MessageJournal<unknown>>;
}

type CaseBody = (c: JournalCase) => Promise<void>;

/** Registers `body` as one jest test per lifecycle (fresh and reopened), each with its own directory and id. */
export function journalCase(options: JournalConformanceOptions, title: string, body: CaseBody): void {
  registerCase(
    runnerOf(options),
    options.create,
    title,
    (ctx): JournalCase => ({
      get journal() {
        return ctx.store;
      },
      id: freshId(),
      ctx,
    }),
    body,
  );
}

const messagesOf = (entries: readonly JournalEntry<unknown>[]) => entries.map((e) => e.message);
const seqsOf = (entries: readonly JournalEntry<unknown>[]) => entries.map((e) => e.sequenceNr);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function fill(journal: MessageJournal<unknown>, id: string, count: number): Promise<void> {
  await journal.appendBatch(
    id,
    range(1, count).map((i) => `m${i}`),
  );
}

// ---- groups ----

export function journalAppendReadGroup(options: JournalConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  describe('append and read', () => {
    journalCase(options, 'the first append to an id gets sequenceNr 1', async ({ journal, id }) => {
      expect(await journal.append(id, 'a')).toBe(1);
    });
    journalCase(options, 'successive appends get 1, 2, 3', async ({ journal, id }) => {
      expect([
        await journal.append(id, 'a'),
        await journal.append(id, 'b'),
        await journal.append(id, 'c'),
      ]).toEqual([1, 2, 3]);
    });
    journalCase(options, 'highestSequenceNr is 0 for an unknown id', async ({ journal, id }) => {
      expect(await journal.highestSequenceNr(id)).toBe(0);
    });
    journalCase(options, 'highestSequenceNr follows appends', async ({ journal, id }) => {
      await fill(journal, id, 4);
      expect(await journal.highestSequenceNr(id)).toBe(4);
    });
    journalCase(options, 'readFrom returns every entry in order with its fields', async ({ journal, id }) => {
      const before = Date.now();
      await journal.append(id, 'a');
      await journal.append(id, { b: 2 });
      const after = Date.now();
      const entries = await collect(journal.readFrom(id, 1));
      expect(
        entries.map(({ persistenceId, sequenceNr, message }) => ({ persistenceId, sequenceNr, message })),
      ).toEqual([
        { persistenceId: id, sequenceNr: 1, message: 'a' },
        { persistenceId: id, sequenceNr: 2, message: { b: 2 } },
      ]);
      for (const e of entries) {
        expect(e.timestamp).toBeGreaterThanOrEqual(before);
        expect(e.timestamp).toBeLessThanOrEqual(after);
      }
    });
    journalCase(options, 'readFrom of an unknown id yields nothing', async ({ journal, id }) => {
      expect(await collect(journal.readFrom(id, 1))).toEqual([]);
    });
    journalCase(options, 'readFrom past the highest yields nothing', async ({ journal, id }) => {
      await fill(journal, id, 3);
      expect(await collect(journal.readFrom(id, 4))).toEqual([]);
    });
    journalCase(options, 'readFrom starts at fromSequenceNr, inclusive', async ({ journal, id }) => {
      await fill(journal, id, 5);
      expect(seqsOf(await collect(journal.readFrom(id, 3)))).toEqual([3, 4, 5]);
    });
    journalCase(options, 'toSequenceNr is an inclusive upper bound', async ({ journal, id }) => {
      await fill(journal, id, 5);
      expect(seqsOf(await collect(journal.readFrom(id, 2, { toSequenceNr: 4 })))).toEqual([2, 3, 4]);
    });
    journalCase(options, 'toSequenceNr below fromSequenceNr yields nothing', async ({ journal, id }) => {
      await fill(journal, id, 5);
      expect(await collect(journal.readFrom(id, 4, { toSequenceNr: 3 }))).toEqual([]);
    });
    journalCase(options, 'toSequenceNr past the highest reads to the end', async ({ journal, id }) => {
      await fill(journal, id, 3);
      expect(seqsOf(await collect(journal.readFrom(id, 1, { toSequenceNr: 100 })))).toEqual([1, 2, 3]);
    });
    journalCase(options, 'max limits the number of entries', async ({ journal, id }) => {
      await fill(journal, id, 5);
      expect(seqsOf(await collect(journal.readFrom(id, 2, { max: 2 })))).toEqual([2, 3]);
    });
    journalCase(options, 'max 0 returns nothing', async ({ journal, id }) => {
      await fill(journal, id, 3);
      expect(await collect(journal.readFrom(id, 1, { max: 0 }))).toEqual([]);
    });
    journalCase(options, 'max larger than what exists returns everything', async ({ journal, id }) => {
      await fill(journal, id, 3);
      expect(seqsOf(await collect(journal.readFrom(id, 1, { max: 1000 })))).toEqual([1, 2, 3]);
    });
    journalCase(options, 'max and toSequenceNr together: whichever stops first', async ({ journal, id }) => {
      await fill(journal, id, 10);
      expect(seqsOf(await collect(journal.readFrom(id, 2, { toSequenceNr: 8, max: 3 })))).toEqual([2, 3, 4]);
      expect(seqsOf(await collect(journal.readFrom(id, 2, { toSequenceNr: 3, max: 5 })))).toEqual([2, 3]);
    });
    journalCase(options, 'ids are independent', async ({ journal, id }) => {
      const other = `${id}-other`;
      await journal.append(id, 'a');
      await journal.append(other, 'x');
      await journal.append(id, 'b');
      expect(messagesOf(await collect(journal.readFrom(id, 1)))).toEqual(['a', 'b']);
      expect(messagesOf(await collect(journal.readFrom(other, 1)))).toEqual(['x']);
      expect(await journal.highestSequenceNr(other)).toBe(1);
    });
    journalCase(
      options,
      'a read sees every append issued before it, awaited or not',
      async ({ journal, id }) => {
        const pending = [journal.append(id, 'a'), journal.append(id, 'b')];
        const entries = await collect(journal.readFrom(id, 1));
        expect(messagesOf(entries)).toEqual(['a', 'b']);
        await Promise.all(pending);
      },
    );
    journalCase(
      options,
      'breaking out of a read releases it; the journal keeps working',
      async ({ journal, id }) => {
        await fill(journal, id, 600);
        for (let round = 0; round < 20; round++) {
          for await (const e of journal.readFrom(id, 1)) {
            if (e.sequenceNr === 2) break;
          }
        }
        expect(await journal.append(id, 'after')).toBe(601);
        expect((await collect(journal.readFrom(id, 1))).length).toBe(601);
      },
    );
    journalCase(options, 'two readers of one id interleave correctly', async ({ journal, id }) => {
      await fill(journal, id, 700);
      const [a, b] = await Promise.all([
        collect(journal.readFrom(id, 1)),
        collect(journal.readFrom(id, 350)),
      ]);
      expect(seqsOf(a)).toEqual(range(1, 700));
      expect(seqsOf(b)).toEqual(range(350, 700));
    });
    journalCase(options, 'a read spanning many pages is complete and ordered', async ({ journal, id }) => {
      await fill(journal, id, 3000);
      const entries = await collect(journal.readFrom(id, 1));
      expect(seqsOf(entries)).toEqual(range(1, 3000));
      expect(entries[2999]!.message).toBe('m3000');
    });
  });
}

export function journalBatchGroup(options: JournalConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  describe('appendBatch', () => {
    journalCase(options, 'returns consecutive sequenceNrs', async ({ journal, id }) => {
      expect(await journal.appendBatch(id, ['a', 'b', 'c'])).toEqual([1, 2, 3]);
    });
    journalCase(options, 'continues the numbering of earlier appends', async ({ journal, id }) => {
      await journal.append(id, 'a');
      expect(await journal.appendBatch(id, ['b', 'c'])).toEqual([2, 3]);
      expect(await journal.append(id, 'd')).toBe(4);
    });
    journalCase(options, 'stores the batch in order', async ({ journal, id }) => {
      await journal.appendBatch(id, ['x', 'y', 'z']);
      expect(messagesOf(await collect(journal.readFrom(id, 1)))).toEqual(['x', 'y', 'z']);
    });
    journalCase(options, 'a batch of one works', async ({ journal, id }) => {
      expect(await journal.appendBatch(id, ['solo'])).toEqual([1]);
    });
    journalCase(
      options,
      'a batch larger than the group-commit size stays whole and consecutive',
      async ({ journal, id }) => {
        const big = range(1, 2500).map((i) => ({ i }));
        expect(await journal.appendBatch(id, big)).toEqual(range(1, 2500));
        expect(messagesOf(await collect(journal.readFrom(id, 2499)))).toEqual([{ i: 2499 }, { i: 2500 }]);
      },
    );
    journalCase(
      options,
      'an appendBatch input array mutated afterwards does not change the stored batch',
      async ({ journal, id }) => {
        const batch = [{ v: 1 }, { v: 2 }];
        const written = journal.appendBatch(id, batch);
        batch[0]!.v = 99;
        batch.push({ v: 3 });
        await written;
        expect(messagesOf(await collect(journal.readFrom(id, 1)))).toEqual([{ v: 1 }, { v: 2 }]);
      },
    );
  });
}

export function journalTruncationGroup(options: JournalConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  describe('truncateBefore', () => {
    journalCase(options, 'deletes the entries below the given sequenceNr', async ({ journal, id }) => {
      await fill(journal, id, 5);
      await journal.truncateBefore(id, 3);
      expect(seqsOf(await collect(journal.readFrom(id, 1)))).toEqual([3, 4, 5]);
    });
    journalCase(options, 'does not lower highestSequenceNr', async ({ journal, id }) => {
      await fill(journal, id, 5);
      await journal.truncateBefore(id, 4);
      expect(await journal.highestSequenceNr(id)).toBe(5);
    });
    journalCase(
      options,
      'MAX_SAFE_INTEGER deletes everything; the highest stays',
      async ({ journal, id }) => {
        await fill(journal, id, 5);
        await journal.truncateBefore(id, Number.MAX_SAFE_INTEGER);
        expect(await collect(journal.readFrom(id, 1))).toEqual([]);
        expect(await journal.highestSequenceNr(id)).toBe(5);
      },
    );
    journalCase(
      options,
      'appends after truncating everything continue the numbering',
      async ({ journal, id }) => {
        await fill(journal, id, 3);
        await journal.truncateBefore(id, Number.MAX_SAFE_INTEGER);
        expect(await journal.append(id, 'next')).toBe(4);
        expect(seqsOf(await collect(journal.readFrom(id, 1)))).toEqual([4]);
      },
    );
    journalCase(options, 'on an unknown id it is a no-op', async ({ journal, id }) => {
      await journal.truncateBefore(id, 10);
      expect(await journal.highestSequenceNr(id)).toBe(0);
      expect(await journal.append(id, 'first')).toBe(1);
      expect(messagesOf(await collect(journal.readFrom(id, 1)))).toEqual(['first']);
    });
    journalCase(
      options,
      'a sequenceNr past the highest deletes all, not later appends',
      async ({ journal, id }) => {
        await fill(journal, id, 3);
        await journal.truncateBefore(id, 10);
        await journal.append(id, 'four');
        expect(messagesOf(await collect(journal.readFrom(id, 1)))).toEqual(['four']);
      },
    );
    journalCase(options, 'a lower second truncation does not bring entries back', async ({ journal, id }) => {
      await fill(journal, id, 6);
      await journal.truncateBefore(id, 5);
      await journal.truncateBefore(id, 2);
      expect(seqsOf(await collect(journal.readFrom(id, 1)))).toEqual([5, 6]);
    });
    journalCase(
      options,
      'reading from below the low-water mark starts at the first kept entry',
      async ({ journal, id }) => {
        await fill(journal, id, 6);
        await journal.truncateBefore(id, 4);
        expect(seqsOf(await collect(journal.readFrom(id, 2, { max: 2 })))).toEqual([4, 5]);
      },
    );
    journalCase(options, 'truncating one id leaves others alone', async ({ journal, id }) => {
      const other = `${id}-other`;
      await fill(journal, id, 3);
      await fill(journal, other, 3);
      await journal.truncateBefore(id, Number.MAX_SAFE_INTEGER);
      expect(seqsOf(await collect(journal.readFrom(other, 1)))).toEqual([1, 2, 3]);
    });
    journalCase(options, 'an id whose entries are all truncated is still listed', async ({ journal, id }) => {
      await fill(journal, id, 2);
      await journal.truncateBefore(id, Number.MAX_SAFE_INTEGER);
      expect(await collect(journal.persistenceIds())).toContain(id);
    });
  });
}

export function journalExpectedSequenceGroup(options: JournalConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  describe('expectedSequenceNr', () => {
    journalCase(options, '0 on a new id succeeds', async ({ journal, id }) => {
      expect(await journal.append(id, 'a', { expectedSequenceNr: 0 })).toBe(1);
    });
    journalCase(options, '0 on an id with entries conflicts and writes nothing', async ({ journal, id }) => {
      await journal.append(id, 'a');
      const error = await journal.append(id, 'b', { expectedSequenceNr: 0 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SequenceConflictError);
      expect(isPersistenceError(error, 'ERR_SEQUENCE_CONFLICT')).toBe(true);
      expect(messagesOf(await collect(journal.readFrom(id, 1)))).toEqual(['a']);
    });
    journalCase(options, 'the current highest succeeds', async ({ journal, id }) => {
      await fill(journal, id, 2);
      expect(await journal.appendBatch(id, ['c', 'd'], { expectedSequenceNr: 2 })).toEqual([3, 4]);
    });
    journalCase(options, 'a stale value conflicts; the error names both numbers', async ({ journal, id }) => {
      await fill(journal, id, 3);
      const error = (await journal.append(id, 'x', { expectedSequenceNr: 2 }).catch((e: unknown) => e)) as
        | SequenceConflictError
        | undefined;
      expect(error?.code).toBe('ERR_SEQUENCE_CONFLICT');
      expect(error?.name).toBe('SequenceConflictError');
      expect(error?.message).toContain('2');
      expect(error?.message).toContain('3');
      expect(await journal.highestSequenceNr(id)).toBe(3);
    });
    journalCase(
      options,
      'compares against the highest ever, truncation notwithstanding',
      async ({ journal, id }) => {
        await fill(journal, id, 3);
        await journal.truncateBefore(id, Number.MAX_SAFE_INTEGER);
        await expect(journal.append(id, 'x', { expectedSequenceNr: 0 })).rejects.toThrow(
          SequenceConflictError,
        );
        expect(await journal.append(id, 'y', { expectedSequenceNr: 3 })).toBe(4);
      },
    );
    journalCase(options, 'a conflicting batch writes none of its messages', async ({ journal, id }) => {
      await fill(journal, id, 2);
      await expect(journal.appendBatch(id, ['p', 'q', 'r'], { expectedSequenceNr: 5 })).rejects.toThrow(
        SequenceConflictError,
      );
      expect(await journal.highestSequenceNr(id)).toBe(2);
      expect(seqsOf(await collect(journal.readFrom(id, 1)))).toEqual([1, 2]);
    });
    journalCase(
      options,
      'counts appends issued before it even when not yet awaited',
      async ({ journal, id }) => {
        const first = journal.append(id, 'a');
        const second = journal.append(id, 'b', { expectedSequenceNr: 1 });
        expect([await first, await second]).toEqual([1, 2]);
      },
    );
    journalCase(
      options,
      'of two writers expecting the same number exactly one wins',
      async ({ journal, id }) => {
        await fill(journal, id, 1);
        const results = await Promise.allSettled([
          journal.append(id, 'w1', { expectedSequenceNr: 1 }),
          journal.append(id, 'w2', { expectedSequenceNr: 1 }),
        ]);
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        expect(await journal.highestSequenceNr(id)).toBe(2);
      },
    );
  });
}

export function journalConcurrencyGroup(options: JournalConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  describe('concurrency and ordering', () => {
    journalCase(
      options,
      '200 concurrent appends to one id get distinct numbers 1..200 in call order',
      async ({ journal, id }) => {
        const seqs = await Promise.all(range(1, 200).map((i) => journal.append(id, i)));
        expect(seqs).toEqual(range(1, 200));
        const entries = await collect(journal.readFrom(id, 1));
        expect(messagesOf(entries)).toEqual(range(1, 200));
      },
    );
    journalCase(options, 'acknowledgments of one id resolve in append order', async ({ journal, id }) => {
      const order: number[] = [];
      await Promise.all(range(1, 100).map((i) => journal.append(id, i).then((seq) => order.push(seq))));
      expect(order).toEqual(range(1, 100));
    });
    journalCase(
      options,
      'concurrent appends across 50 ids keep every id contiguous',
      async ({ journal, id }) => {
        const ids = range(1, 50).map((n) => `${id}-${n}`);
        await Promise.all(ids.flatMap((pid) => range(1, 10).map((i) => journal.append(pid, `${pid}:${i}`))));
        for (const pid of ids) {
          const entries = await collect(journal.readFrom(pid, 1));
          expect(seqsOf(entries)).toEqual(range(1, 10));
          expect(messagesOf(entries)).toEqual(range(1, 10).map((i) => `${pid}:${i}`));
        }
      },
    );
    journalCase(
      options,
      'interleaved batches and single appends stay contiguous and whole',
      async ({ journal, id }) => {
        const calls = range(1, 40).map((i) =>
          i % 3 === 0 ? journal.appendBatch(id, [`b${i}a`, `b${i}b`, `b${i}c`]) : journal.append(id, `s${i}`),
        );
        await Promise.all(calls);
        const messages = messagesOf(await collect(journal.readFrom(id, 1))) as string[];
        const expected = range(1, 40).flatMap((i) =>
          i % 3 === 0 ? [`b${i}a`, `b${i}b`, `b${i}c`] : [`s${i}`],
        );
        expect(messages).toEqual(expected);
      },
    );
    journalCase(
      options,
      'flush resolves only once every earlier append is done',
      async ({ ctx, journal, id }) => {
        ctx.requires(journal.capabilities.flush, 'flush');
        if (!canFlush(journal)) throw new Error('declares flush but is no FlushableJournal');
        const pending = range(1, 30).map((i) => journal.append(id, i));
        let settled = 0;
        for (const p of pending) void p.then(() => settled++);
        await journal.flush();
        // The appends' callbacks may be queued in the same turn as flush's: let microtasks run, but no I/O,
        // so an append that flush did not wait for is still unsettled here.
        for (let i = 0; i < 20; i++) await Promise.resolve();
        expect(settled).toBe(30);
        expect(await journal.highestSequenceNr(id)).toBe(30);
      },
    );
    journalCase(options, 'a batched journal reports its batching bounds', async ({ ctx, journal }) => {
      ctx.requires(journal.capabilities.flush, 'flush');
      if (!canFlush(journal)) throw new Error('declares flush but is no FlushableJournal');
      expect(Number.isInteger(journal.maxBatchSize) && journal.maxBatchSize >= 1).toBe(true);
      expect(Number.isInteger(journal.maxBatchDelayMs) && journal.maxBatchDelayMs >= 0).toBe(true);
    });
  });
}

export function journalValidationGroup(options: JournalConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  const rejects = async (promise: Promise<unknown>, kind: typeof TypeError | typeof RangeError) => {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(kind);
  };
  const invalidIds: Array<[string, unknown]> = [
    ['an empty string', ''],
    ['a number', 42],
    ['undefined', undefined],
    ['null', null],
  ];
  describe('bad arguments reject and change nothing', () => {
    for (const [label, bad] of invalidIds) {
      journalCase(options, `persistenceId as ${label} is a TypeError`, async ({ journal }) => {
        await rejects(journal.append(bad as string, 'x'), TypeError);
        await rejects(journal.highestSequenceNr(bad as string), TypeError);
        await rejects(collect(journal.readFrom(bad as string, 1)), TypeError);
      });
    }
    journalCase(options, 'a persistenceId over 1 KB of UTF-8 is a RangeError', async ({ journal }) => {
      await rejects(journal.append('é'.repeat(513), 'x'), RangeError);
    });
    journalCase(options, 'readFrom(id, 0) is a RangeError', async ({ journal, id }) => {
      await fill(journal, id, 2);
      await rejects(collect(journal.readFrom(id, 0)), RangeError);
    });
    journalCase(
      options,
      'readFrom with a negative or fractional sequenceNr is a RangeError',
      async ({ journal, id }) => {
        await rejects(collect(journal.readFrom(id, -1)), RangeError);
        await rejects(collect(journal.readFrom(id, 1.5)), RangeError);
        await rejects(collect(journal.readFrom(id, Number.NaN)), RangeError);
      },
    );
    journalCase(options, 'a non-numeric sequenceNr is a TypeError', async ({ journal, id }) => {
      await rejects(collect(journal.readFrom(id, '1' as unknown as number)), TypeError);
      await rejects(journal.truncateBefore(id, '1' as unknown as number), TypeError);
    });
    journalCase(
      options,
      'truncateBefore(id, 0) is a RangeError and deletes nothing',
      async ({ journal, id }) => {
        await fill(journal, id, 2);
        await rejects(journal.truncateBefore(id, 0), RangeError);
        await rejects(journal.truncateBefore(id, 2.5), RangeError);
        expect(seqsOf(await collect(journal.readFrom(id, 1)))).toEqual([1, 2]);
      },
    );
    journalCase(options, 'an empty batch is a RangeError and writes nothing', async ({ journal, id }) => {
      await rejects(journal.appendBatch(id, []), RangeError);
      expect(await journal.highestSequenceNr(id)).toBe(0);
    });
    journalCase(options, 'a batch that is not an array is a TypeError', async ({ journal, id }) => {
      await rejects(journal.appendBatch(id, 'abc' as unknown as string[]), TypeError);
      expect(await journal.highestSequenceNr(id)).toBe(0);
    });
    journalCase(options, 'a negative or fractional max is a RangeError', async ({ journal, id }) => {
      await fill(journal, id, 2);
      await rejects(collect(journal.readFrom(id, 1, { max: -1 })), RangeError);
      await rejects(collect(journal.readFrom(id, 1, { max: 1.5 })), RangeError);
    });
    journalCase(options, 'toSequenceNr 0 is a RangeError', async ({ journal, id }) => {
      await rejects(collect(journal.readFrom(id, 1, { toSequenceNr: 0 })), RangeError);
    });
    journalCase(
      options,
      'a negative expectedSequenceNr is a RangeError and writes nothing',
      async ({ journal, id }) => {
        await rejects(journal.append(id, 'x', { expectedSequenceNr: -1 }), RangeError);
        expect(await journal.highestSequenceNr(id)).toBe(0);
      },
    );
    journalCase(options, 'after a run of bad calls the id is exactly as before', async ({ journal, id }) => {
      await fill(journal, id, 3);
      await Promise.allSettled([
        journal.appendBatch(id, []),
        journal.truncateBefore(id, 0),
        journal.append(id, 'x', { expectedSequenceNr: -5 }),
        collect(journal.readFrom(id, 0)),
      ]);
      expect(await journal.highestSequenceNr(id)).toBe(3);
      expect(messagesOf(await collect(journal.readFrom(id, 1)))).toEqual(['m1', 'm2', 'm3']);
    });
  });
}

export function journalCloseGroup(options: JournalConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  const isClosed = (e: unknown) =>
    e instanceof JournalClosedError || isPersistenceError(e, 'ERR_JOURNAL_CLOSED');
  describe('close', () => {
    journalCase(options, 'close is idempotent', async ({ journal }) => {
      await journal.close();
      await journal.close();
      await Promise.all([journal.close(), journal.close()]);
    });
    journalCase(
      options,
      'every call after close rejects with JournalClosedError',
      async ({ journal, id }) => {
        await journal.append(id, 'a');
        await journal.close();
        const outcomes = await Promise.allSettled([
          journal.append(id, 'b'),
          journal.appendBatch(id, ['c']),
          journal.highestSequenceNr(id),
          journal.truncateBefore(id, 1),
          collect(journal.readFrom(id, 1)),
          collect(journal.persistenceIds()),
        ]);
        for (const outcome of outcomes) {
          expect(outcome.status).toBe('rejected');
          expect(isClosed((outcome as PromiseRejectedResult).reason)).toBe(true);
        }
      },
    );
    journalCase(options, 'the closed error says what happened', async ({ journal, id }) => {
      await journal.close();
      const error = (await journal.append(id, 'x').catch((e: unknown) => e)) as Error;
      expect(error.name).toBe('JournalClosedError');
      expect(error.message).toMatch(/closed/);
    });
    journalCase(
      options,
      'appends issued before close complete before close resolves',
      async ({ ctx, journal, id }) => {
        const pending = range(1, 50).map((i) => journal.append(id, i));
        await journal.close();
        expect(await Promise.all(pending)).toEqual(range(1, 50));
        const reopened = await ctx.reopen();
        // What a non-persistent journal keeps across a reopen is not promised either way.
        if (reopened.capabilities.persistent) expect(await reopened.highestSequenceNr(id)).toBe(50);
      },
    );
    journalCase(
      options,
      'a read still open at close rejects its next pull with JournalClosedError',
      async ({ journal, id }) => {
        await fill(journal, id, 2000);
        const iterator = journal.readFrom(id, 1)[Symbol.asyncIterator]();
        expect((await iterator.next()).value?.sequenceNr).toBe(1);
        await journal.close();
        let error: unknown;
        try {
          for (;;) {
            const next = await iterator.next();
            if (next.done) break;
          }
        } catch (e) {
          error = e;
        }
        expect(isClosed(error)).toBe(true);
      },
    );
  });
}

export function journalIdsGroup(options: JournalConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  describe('persistence ids', () => {
    journalCase(options, 'persistenceIds lists every id appended to', async ({ journal, id }) => {
      const ids = [`${id}-a`, `${id}-b`, `${id}-c`];
      for (const pid of ids) await journal.append(pid, 'x');
      const listed = await collect(journal.persistenceIds());
      for (const pid of ids) expect(listed).toContain(pid);
      expect(new Set(listed).size).toBe(listed.length);
    });
    journalCase(
      options,
      'ids that a naive file-name mapping would merge stay distinct',
      async ({ journal, id }) => {
        const tricky = [
          'a:b',
          'a_b',
          'a/b',
          'a\\b',
          'a%3Ab',
          'A:B',
          'a..b',
          '..',
          '.',
          'a b',
          'a\u0000b',
          'CON',
          'x'.repeat(300),
        ];
        const ids = tricky.map((t) => `${id}|${t}`);
        for (const [i, pid] of ids.entries())
          await journal.appendBatch(
            pid,
            range(0, i).map((n) => `${i}:${n}`),
          );
        for (const [i, pid] of ids.entries()) {
          expect(await journal.highestSequenceNr(pid)).toBe(i + 1);
          expect(messagesOf(await collect(journal.readFrom(pid, 1)))[0]).toBe(`${i}:0`);
        }
        const listed = new Set(await collect(journal.persistenceIds()));
        for (const pid of ids) expect(listed.has(pid)).toBe(true);
      },
    );
    journalCase(options, 'unicode ids round-trip exactly', async ({ journal, id }) => {
      const ids = ['ä', 'a\u0308', '日本語', '🙂', 'Ω≈ç√'].map((u) => `${id}-${u}`);
      for (const pid of ids) await journal.append(pid, pid);
      for (const pid of ids) expect(messagesOf(await collect(journal.readFrom(pid, 1)))).toEqual([pid]);
      const listed = await collect(journal.persistenceIds());
      for (const pid of ids) expect(listed).toContain(pid);
    });
    journalCase(options, 'a 1 KB id works and does not collide with its prefixes', async ({ journal }) => {
      const long = `${freshId()}-${'é'.repeat(400)}`.slice(0, 500);
      const ids = [long, long.slice(0, -1), `${long.slice(0, -1)}x`];
      for (const pid of ids) expect(Buffer.byteLength(pid)).toBeLessThanOrEqual(1024);
      for (const [i, pid] of ids.entries()) await journal.append(pid, i);
      for (const [i, pid] of ids.entries())
        expect(messagesOf(await collect(journal.readFrom(pid, 1)))).toEqual([i]);
    });
  });
}

export function journalMessagesGroup(options: JournalConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  describe('messages', () => {
    journalCase(options, 'JSON-like values round-trip', async ({ journal, id }) => {
      const values = ['text', '', 0, -1.5, 1e300, true, false, null, { a: [1, { b: 'c' }] }, [], {}];
      await journal.appendBatch(id, values);
      expect(messagesOf(await collect(journal.readFrom(id, 1)))).toEqual(values);
    });
    journalCase(
      options,
      'Date, Map, Set, BigInt, bytes, -0 and undefined round-trip',
      async ({ journal, id }) => {
        const value = {
          date: new Date('2026-11-23T10:00:00.000Z'),
          map: new Map<unknown, unknown>([
            ['k', 1],
            [2, { nested: new Set(['s']) }],
          ]),
          set: new Set([1, 'two']),
          big: 12345678901234567890n,
          bytes: new Uint8Array([0, 255, 7]),
          negativeZero: -0,
          sparse: [1, undefined, 3],
        };
        await journal.append(id, value);
        const [entry] = await collect(journal.readFrom(id, 1));
        const back = entry!.message as typeof value;
        expect(back.date).toBeInstanceOf(Date);
        expect(back.date.getTime()).toBe(value.date.getTime());
        expect(back.map).toBeInstanceOf(Map);
        expect(back.map.get(2)).toEqual({ nested: new Set(['s']) });
        expect(back.set).toEqual(new Set([1, 'two']));
        expect(back.big).toBe(12345678901234567890n);
        expect(Array.from(back.bytes)).toEqual([0, 255, 7]);
        expect(Object.is(back.negativeZero, -0)).toBe(true);
        expect(back.sparse).toEqual([1, undefined, 3]);
        expect(back.sparse.length).toBe(3);
      },
    );
    journalCase(options, 'a 1 MB message round-trips', async ({ journal, id }) => {
      const big = { blob: 'x'.repeat(1024 * 1024), n: 1 };
      await journal.append(id, big);
      expect(messagesOf(await collect(journal.readFrom(id, 1)))).toEqual([big]);
    });
    journalCase(
      options,
      'mutating a message after append does not change what is stored',
      async ({ journal, id }) => {
        const message = { n: 1, list: [1] };
        const written = journal.append(id, message);
        message.n = 2;
        message.list.push(2);
        await written;
        expect(messagesOf(await collect(journal.readFrom(id, 1)))).toEqual([{ n: 1, list: [1] }]);
      },
    );
    journalCase(
      options,
      'a message that cannot be serialized is rejected with ERR_WRITE_REJECTED and nothing is stored',
      async ({ journal, id }) => {
        await journal.append(id, 'ok');
        const error = await journal.appendBatch(id, ['fine', { f: () => 1 }]).catch((e: unknown) => e);
        expect((error as { code?: unknown })?.code).toBe('ERR_WRITE_REJECTED');
        expect(isPersistenceError(error, 'ERR_WRITE_REJECTED')).toBe(true);
        expect(await journal.highestSequenceNr(id)).toBe(1);
        expect(messagesOf(await collect(journal.readFrom(id, 1)))).toEqual(['ok']);
        expect(await journal.append(id, 'later')).toBe(2);
      },
    );
  });
}

export function journalReopenGroup(options: JournalConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  const durable = (title: string, body: CaseBody) =>
    journalCase(options, title, async (c) => {
      c.ctx.requires(c.journal.capabilities.persistent, 'persistent');
      await body(c);
    });
  describe('reopen durability', () => {
    durable('entries survive close and reopen', async ({ ctx, journal, id }) => {
      await journal.appendBatch(id, ['a', 'b']);
      await journal.append(id, { c: new Date(5) });
      const reopened = await ctx.reopen();
      expect(messagesOf(await collect(reopened.readFrom(id, 1)))).toEqual(['a', 'b', { c: new Date(5) }]);
    });
    durable('numbering continues after reopen', async ({ ctx, journal, id }) => {
      await fill(journal, id, 3);
      const reopened = await ctx.reopen();
      expect(await reopened.highestSequenceNr(id)).toBe(3);
      expect(await reopened.append(id, 'd')).toBe(4);
    });
    durable('truncation and the kept highest survive reopen', async ({ ctx, journal, id }) => {
      await fill(journal, id, 5);
      await journal.truncateBefore(id, 3);
      await journal.truncateBefore(`${id}-all`, 1);
      await fill(journal, `${id}-all`, 2);
      await journal.truncateBefore(`${id}-all`, Number.MAX_SAFE_INTEGER);
      const reopened = await ctx.reopen();
      expect(seqsOf(await collect(reopened.readFrom(id, 1)))).toEqual([3, 4, 5]);
      expect(await reopened.highestSequenceNr(`${id}-all`)).toBe(2);
      expect(await collect(reopened.readFrom(`${id}-all`, 1))).toEqual([]);
      expect(await reopened.append(`${id}-all`, 'x')).toBe(3);
    });
    durable('persistenceIds survive reopen', async ({ ctx, journal, id }) => {
      await journal.append(`${id}-1`, 'x');
      await journal.append(`${id}-2`, 'y');
      const reopened = await ctx.reopen();
      const listed = await collect(reopened.persistenceIds());
      expect(listed).toEqual(expect.arrayContaining([`${id}-1`, `${id}-2`]));
    });
    durable('expectedSequenceNr is checked against the reopened highest', async ({ ctx, journal, id }) => {
      await fill(journal, id, 2);
      const reopened = await ctx.reopen();
      await expect(reopened.append(id, 'x', { expectedSequenceNr: 0 })).rejects.toThrow(
        SequenceConflictError,
      );
      expect(await reopened.append(id, 'y', { expectedSequenceNr: 2 })).toBe(3);
    });
  });
}

/** Cairn's tool methods: copies keep sequence numbers and timestamps, also of truncated ids. */
export function journalImportGroup(options: JournalConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  describe('imports (tools)', () => {
    const entry = (id: string, sequenceNr: number) => ({
      persistenceId: id,
      sequenceNr,
      timestamp: 1_000_000 + sequenceNr,
      message: { n: sequenceNr },
      tags: [] as string[],
    });
    const importing = (journal: MessageJournal<unknown>, ctx: CaseContext<MessageJournal<unknown>>) => {
      ctx.requires(journal.capabilities.import, 'import');
      if (!canImport(journal)) throw new Error('declares import but is no ImportableJournal');
      return journal;
    };

    journalCase(
      options,
      'importEntries keeps sequence numbers and timestamps',
      async ({ ctx, journal, id }) => {
        await importing(journal, ctx).importEntries(id, [entry(id, 1), entry(id, 2)]);
        await importing(journal, ctx).importEntries(id, [entry(id, 3)]);
        expect(await collect(journal.readFrom(id, 1))).toEqual([entry(id, 1), entry(id, 2), entry(id, 3)]);
        expect(await journal.append(id, 'next')).toBe(4);
      },
    );
    journalCase(
      options,
      'importEntries starts an id that never had events above 1, the numbers below truncated',
      async ({ ctx, journal, id }) => {
        await importing(journal, ctx).importEntries(id, [entry(id, 7), entry(id, 8)]);
        expect(await journal.highestSequenceNr(id)).toBe(8);
        expect(await collect(journal.readFrom(id, 1))).toEqual([entry(id, 7), entry(id, 8)]);
        const reopened = await ctx.reopen();
        expect(await collect(reopened.readFrom(id, 1))).toEqual([entry(id, 7), entry(id, 8)]);
        expect(await reopened.append(id, 'next')).toBe(9);
      },
    );
    journalCase(
      options,
      'importEntries refuses a gap after existing events, writing nothing',
      async ({ ctx, journal, id }) => {
        await journal.append(id, 'first');
        await expect(importing(journal, ctx).importEntries(id, [entry(id, 3)])).rejects.toThrow(RangeError);
        expect(await journal.highestSequenceNr(id)).toBe(1);
        expect(seqsOf(await collect(journal.readFrom(id, 1)))).toEqual([1]);
      },
    );
    journalCase(
      options,
      'importTruncated gives an id without events a highest, kept across reopen',
      async ({ ctx, journal, id }) => {
        await importing(journal, ctx).importTruncated(id, 12);
        expect(await journal.highestSequenceNr(id)).toBe(12);
        expect(await collect(journal.readFrom(id, 1))).toEqual([]);
        await importing(journal, ctx).importTruncated(id, 12); // again: nothing to do
        const reopened = await ctx.reopen();
        expect(await reopened.highestSequenceNr(id)).toBe(12);
        expect(await reopened.append(id, 'next')).toBe(13);
      },
    );
    journalCase(
      options,
      'importInOrder writes several ids in the order given, which the global order keeps',
      async ({ ctx, journal, id }) => {
        const [a, b, c] = [`${id}-a`, `${id}-b`, `${id}-c`];
        const given = [
          entry(a, 1),
          entry(b, 1),
          entry(a, 2),
          entry(c, 7),
          entry(b, 2),
          entry(b, 3),
          entry(a, 3),
        ];
        // At most maxBatchSize entries a call: one call after the other keeps the order too.
        const most = canFlush(journal) ? journal.maxBatchSize : given.length;
        for (let at = 0; at < given.length; at += most) {
          await importing(journal, ctx).importInOrder(given.slice(at, at + most));
        }
        expect(await collect(journal.readFrom(a, 1))).toEqual([entry(a, 1), entry(a, 2), entry(a, 3)]);
        expect(await collect(journal.readFrom(c, 1))).toEqual([entry(c, 7)]);
        expect(await journal.append(b, 'next')).toBe(4);
        if (canQuery(journal)) {
          const ours = new Set([a, b, c]);
          const order = (await collect(journal.allEvents()))
            .filter((e) => ours.has(e.persistenceId))
            .map((e) => `${e.persistenceId}#${e.sequenceNr}`);
          expect(order).toEqual([...given.map((e) => `${e.persistenceId}#${e.sequenceNr}`), `${b}#4`]);
        }
      },
    );
    journalCase(
      options,
      'importInOrder refuses a gap, or entries not continuing an id, writing nothing',
      async ({ ctx, journal, id }) => {
        const [a, b] = [`${id}-a`, `${id}-b`];
        await journal.append(b, 'first');
        const importer = importing(journal, ctx);
        await expect(importer.importInOrder([entry(a, 1), entry(b, 2), entry(a, 3)])).rejects.toThrow(
          RangeError,
        );
        await expect(importer.importInOrder([entry(a, 1), entry(b, 3)])).rejects.toThrow(RangeError);
        await expect(importer.importInOrder([])).rejects.toThrow(RangeError);
        expect(await journal.highestSequenceNr(a)).toBe(0);
        expect(await journal.highestSequenceNr(b)).toBe(1);
        expect(await journal.append(a, 'next')).toBe(1);
      },
    );
    journalCase(
      options,
      'importTruncated refuses an id that has events, changing nothing',
      async ({ ctx, journal, id }) => {
        await fill(journal, id, 2);
        await expect(importing(journal, ctx).importTruncated(id, 5)).rejects.toThrow(RangeError);
        expect(await journal.highestSequenceNr(id)).toBe(2);
        expect(await journal.append(id, 'next')).toBe(3);
      },
    );
  });
}

/**
 * The journal declares its capabilities, and each declared one is backed by its interface: a journal
 * that declares nothing fails here instead of passing every capability check by default.
 */
export function journalCapabilitiesGroup(options: JournalConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  describe('capabilities', () => {
    journalCase(options, 'the journal declares its capabilities on the instance', async ({ journal }) => {
      const declared = journal.capabilities as unknown;
      expect(typeof declared).toBe('object');
      expect(typeof journal.capabilities.persistent).toBe('boolean');
      for (const [flag, value] of Object.entries(journal.capabilities)) {
        expect([flag, typeof value]).toEqual([flag, 'boolean']);
      }
    });
    journalCase(options, 'each declared capability comes with its methods', async ({ journal }) => {
      const methods: Record<string, string[]> = {
        import: ['importEntries', 'importTruncated'],
        repair: ['repairAfterCorruption'],
        flush: ['flush'],
        metrics: ['metrics'],
        deletion: ['deletePersistenceId'],
      };
      const missing: string[] = [];
      for (const [flag, names] of Object.entries(methods)) {
        if ((journal.capabilities as unknown as Record<string, unknown>)[flag] !== true) continue;
        for (const name of names) {
          if (typeof (journal as unknown as Record<string, unknown>)[name] !== 'function')
            missing.push(`${flag}: ${name}()`);
        }
      }
      expect(missing).toEqual([]);
    });
  });
}

/**
 * The journal conformance suite: every group below, each case on a fresh id and temp directory, run on a
 * freshly created journal and on one closed and reopened first. Call it at the top level of a test file:
 *
 *   journalConformance({ name: 'file', create: ({ dir }) => FileMessageJournal.open({ path: dir }) });
 */
export function journalConformance(options: JournalConformanceOptions): void {
  const { describe } = runnerOf(options);
  describe(`${options.name} journal conformance`, () => {
    journalCapabilitiesGroup(options);
    journalAppendReadGroup(options);
    journalBatchGroup(options);
    journalTruncationGroup(options);
    journalExpectedSequenceGroup(options);
    journalConcurrencyGroup(options);
    journalValidationGroup(options);
    journalCloseGroup(options);
    journalIdsGroup(options);
    journalMessagesGroup(options);
    journalReopenGroup(options);
    journalImportGroup(options);
    journalModelGroup(options);
    journalQueryGroup(options);
    journalQueryModelGroup(options);
    journalDeletionGroup(options);
  });
}
