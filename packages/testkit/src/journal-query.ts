import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  canQuery,
  type EventEnvelope,
  type EventQuery,
  isPersistenceError,
  type MessageJournal,
} from '@cairn/actor-core';
import { collect, freshId, runnerOf } from './conformance-context';
import { type JournalCase, type JournalConformanceOptions, journalCase } from './journal-conformance';

type QueryJournal = MessageJournal<unknown> & EventQuery<unknown>;

/** The journal of a case as an EventQuery; fails the case when it does not declare `query`. */
function queried(journal: MessageJournal<unknown>): QueryJournal {
  if (!canQuery(journal)) throw new Error('the journal does not declare capabilities.query');
  return journal;
}

const key = (e: EventEnvelope<unknown>) => `${e.persistenceId}#${e.sequenceNr}`;
const keys = (events: readonly EventEnvelope<unknown>[]) => events.map(key);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Takes `count` events from a (live) query, then breaks out of it. */
async function take(
  query: AsyncIterable<EventEnvelope<unknown>>,
  count: number,
): Promise<EventEnvelope<unknown>[]> {
  const out: EventEnvelope<unknown>[] = [];
  if (count === 0) return out;
  for await (const e of query) {
    out.push(e);
    if (out.length >= count) break;
  }
  return out;
}

/** The error a promise rejects with (fails when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

/** Waits until `condition` holds (checked every 10 ms), failing after `ms`. */
async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

type Case = (c: JournalCase & { q: QueryJournal }) => Promise<void>;

/**
 * EventQuery: tags, the global order, offsets, current and live queries, truncation, concurrent writers,
 * abort and close. Gated by `capabilities.query`.
 */
export function journalQueryGroup(options: JournalConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  const test = (title: string, body: Case) =>
    journalCase(options, title, (c) => {
      c.ctx.requires(c.journal.capabilities.query, 'query');
      return body({ ...c, q: queried(c.journal) });
    });

  describe('queries', () => {
    describe('tags', () => {
      test('tags are stored with the events and read back; untagged events have []', async ({ q, id }) => {
        await q.append(id, 'a', { tags: ['red', 'blue'] });
        await q.append(id, 'b');
        await q.appendBatch(id, ['c', 'd'], { tags: ['red'] });
        const read = await collect(q.readFrom(id, 1));
        expect(read.map((e) => e.tags)).toEqual([['red', 'blue'], [], ['red'], ['red']]);
        expect((await collect(q.allEvents())).map((e) => e.tags)).toEqual(read.map((e) => e.tags));
      });
      test('a tag function gives each event of one batch its own tags', async ({ q, id }) => {
        await q.appendBatch(id, [1, 2, 3, 4], {
          tags: (m, i) => ((m as number) % 2 === 0 ? ['even', `i${i}`] : []),
        });
        const tagged = await collect(q.eventsByTag('even'));
        expect(tagged.map((e) => e.message)).toEqual([2, 4]);
        expect(tagged.map((e) => e.tags)).toEqual([
          ['even', 'i1'],
          ['even', 'i3'],
        ]);
        expect((await collect(q.readFrom(id, 1))).map((e) => e.tags)).toEqual([
          [],
          ['even', 'i1'],
          [],
          ['even', 'i3'],
        ]);
      });
      test('a tag given twice is stored once', async ({ q, id }) => {
        await q.append(id, 'a', { tags: ['x', 'y', 'x'] });
        expect((await collect(q.readFrom(id, 1)))[0]!.tags).toEqual(['x', 'y']);
        expect(await collect(q.eventsByTag('x'))).toHaveLength(1);
      });
      test('bad tags reject the whole call with TypeError/RangeError and store nothing', async ({
        q,
        id,
      }) => {
        await q.append(id, 'first');
        const bad: [unknown, unknown][] = [
          [[''], TypeError],
          [[42], TypeError],
          ['red', TypeError],
          [['\ud800'], TypeError],
          [['x'.repeat(257)], RangeError],
          [['é'.repeat(129)], RangeError],
          [range(1, 65).map((i) => `t${i}`), RangeError],
          [() => 'nope', TypeError],
        ];
        for (const [tags, type] of bad) {
          const options = { tags } as { tags: readonly string[] };
          await expect(q.append(id, 'x', options)).rejects.toThrow(type as ErrorConstructor);
          await expect(q.appendBatch(id, ['x', 'y'], options)).rejects.toThrow(type as ErrorConstructor);
        }
        // One bad event's tags refuse the whole batch.
        await expect(
          q.appendBatch(id, ['x', 'y'], { tags: (_m, i) => (i === 1 ? [''] : ['ok']) }),
        ).rejects.toThrow(/message 1 of the batch/);
        const thrown = new Error('tagger failed');
        await expect(
          q.append(id, 'x', {
            tags: () => {
              throw thrown;
            },
          }),
        ).rejects.toBe(thrown);
        // 256 bytes and 64 tags are still fine.
        await q.append(id, 'edge', { tags: ['x'.repeat(256), ...range(2, 64).map((i) => `t${i}`)] });
        expect(await q.highestSequenceNr(id)).toBe(2);
        expect((await collect(q.allEvents())).map((e) => e.message)).toEqual(['first', 'edge']);
      });
      test('eventsByTag refuses a bad tag with a TypeError on the first next()', async ({ q }) => {
        await expect(collect(q.eventsByTag(''))).rejects.toThrow(TypeError);
        await expect(collect(q.eventsByTag(7 as unknown as string))).rejects.toThrow(TypeError);
      });
    });

    describe('the global order', () => {
      test('allEvents returns every event in append order, with id, sequenceNr, timestamp and unique offsets', async ({
        q,
      }) => {
        const a = freshId('a');
        const b = freshId('b');
        const before = Date.now();
        await q.append(a, 'a1');
        await q.append(b, 'b1');
        await q.appendBatch(a, ['a2', 'a3']);
        await q.append(b, 'b2');
        const all = await collect(q.allEvents());
        expect(keys(all)).toEqual([`${a}#1`, `${b}#1`, `${a}#2`, `${a}#3`, `${b}#2`]);
        expect(all.map((e) => e.message)).toEqual(['a1', 'b1', 'a2', 'a3', 'b2']);
        for (const e of all) {
          expect(e.timestamp).toBeGreaterThanOrEqual(before - 1);
          expect(typeof e.offset).toBe('string');
        }
        expect(new Set(all.map((e) => e.offset)).size).toBe(all.length);
        expect(await q.headOffset()).toBe(all.at(-1)!.offset);
      });
      test('an empty journal has no head offset and empty queries', async ({ q }) => {
        expect(await q.headOffset()).toBeUndefined();
        expect(await collect(q.allEvents())).toEqual([]);
        expect(await collect(q.eventsByTag('t'))).toEqual([]);
        expect(await collect(q.eventsByPersistenceId(freshId()))).toEqual([]);
      });
      test('a current query ends at the last event committed when it started', async ({ q, id }) => {
        await q.appendBatch(id, range(1, 600));
        const seen: unknown[] = [];
        for await (const e of q.allEvents()) {
          seen.push(e.message);
          if (seen.length === 1) await q.appendBatch(id, range(601, 700));
        }
        expect(seen).toEqual(range(1, 600));
        expect(await collect(q.allEvents())).toHaveLength(700);
      });
      test('the order is the same for every reader and survives a reopen', async ({ ctx, q }) => {
        ctx.requires(q.capabilities.persistent, 'persistent');
        const ids = range(1, 5).map(() => freshId());
        await Promise.all(ids.map((id, i) => q.appendBatch(id, range(1, 10 + i), { tags: ['all'] })));
        const first = await collect(q.allEvents());
        expect(keys(await collect(q.eventsByTag('all')))).toEqual(keys(first));
        const reopened = queried(await ctx.reopen());
        const again = await collect(reopened.allEvents());
        expect(keys(again)).toEqual(keys(first));
        expect(again.map((e) => e.offset)).toEqual(first.map((e) => e.offset));
        expect(again.map((e) => e.tags)).toEqual(first.map((e) => e.tags));
      });
      test('concurrent appends and batches: per id ascending, a batch adjacent, resolved-before comes first', async ({
        q,
      }) => {
        const ids = range(1, 8).map(() => freshId());
        const resolvedBefore: string[] = [];
        await Promise.all(
          ids.map(async (id, i) => {
            for (let round = 0; round < 6; round++) {
              if ((round + i) % 2 === 0) await q.append(id, `${id}:${round}`);
              else await q.appendBatch(id, [`${id}:${round}a`, `${id}:${round}b`, `${id}:${round}c`]);
            }
          }),
        );
        const marker = freshId('marker');
        await q.append(marker, 'last');
        resolvedBefore.push(marker);
        const all = await collect(q.allEvents());
        expect(all.at(-1)!.persistenceId).toBe(marker);
        for (const id of ids) {
          const own = all.filter((e) => e.persistenceId === id);
          expect(own.map((e) => e.sequenceNr)).toEqual(range(1, own.length));
        }
        all.forEach((e, i) => {
          if (typeof e.message === 'string' && e.message.endsWith('a')) {
            expect([all[i + 1]!.message, all[i + 2]!.message]).toEqual([
              e.message.replace(/a$/, 'b'),
              e.message.replace(/a$/, 'c'),
            ]);
          }
        });
      });
    });

    describe('offsets', () => {
      test('after: resumes just after an offset, also across queries of the same journal', async ({
        q,
        id,
      }) => {
        const other = freshId();
        await q.appendBatch(id, ['a', 'b', 'c'], { tags: (m) => (m === 'b' ? [] : ['t']) });
        await q.append(other, 'x', { tags: ['t'] });
        await q.append(id, 'd', { tags: ['t'] });
        const all = await collect(q.allEvents());
        expect(all.map((e) => e.message)).toEqual(['a', 'b', 'c', 'x', 'd']);
        const afterB = all[1]!.offset;
        expect((await collect(q.allEvents({ after: afterB }))).map((e) => e.message)).toEqual([
          'c',
          'x',
          'd',
        ]);
        expect((await collect(q.eventsByTag('t', { after: afterB }))).map((e) => e.message)).toEqual([
          'c',
          'x',
          'd',
        ]);
        expect((await collect(q.eventsByPersistenceId(id, { after: afterB }))).map((e) => e.message)).toEqual(
          ['c', 'd'],
        );
        const byTag = await collect(q.eventsByTag('t'));
        expect((await collect(q.allEvents({ after: byTag[2]!.offset }))).map((e) => e.message)).toEqual([
          'd',
        ]);
        expect(await collect(q.allEvents({ after: (await q.headOffset())! }))).toEqual([]);
      });
      test('offsets stay valid across close and reopen', async ({ ctx, q, id }) => {
        ctx.requires(q.capabilities.persistent, 'persistent');
        await q.appendBatch(id, range(1, 20));
        const all = await collect(q.allEvents());
        const reopened = queried(await ctx.reopen());
        await reopened.append(id, 21);
        const rest = await collect(reopened.allEvents({ after: all[9]!.offset }));
        expect(rest.map((e) => e.message)).toEqual(range(11, 21));
        expect(rest.slice(0, 10).map((e) => e.offset)).toEqual(all.slice(10).map((e) => e.offset));
      });
      test('a garbled or made-up offset is a TypeError naming it', async ({ q, id }) => {
        await q.appendBatch(id, ['a', 'b']);
        const good = (await collect(q.allEvents()))[0]!.offset;
        const garbled = [
          'nonsense',
          '',
          `${good}x`,
          good.slice(0, -1) + (good.endsWith('0') ? '1' : '0'),
          good.replace(/\.(\d+)\./, (_m, p: string) => `.${Number(p) + 1}.`),
        ];
        for (const offset of garbled) {
          const error = await rejection(collect(q.allEvents({ after: offset })));
          expect(error).toBeInstanceOf(TypeError);
          if (offset.length > 0) expect(error.message).toContain(offset);
          await expect(collect(q.eventsByTag('t', { after: offset }))).rejects.toThrow(TypeError);
          await expect(collect(q.eventsByPersistenceId(id, { after: offset }))).rejects.toThrow(TypeError);
        }
        await expect(collect(q.allEvents({ after: 42 as unknown as string }))).rejects.toThrow(TypeError);
      });
      test("another journal's offset is a TypeError naming it", async ({ q, id }) => {
        const dir = await mkdtemp(path.join(tmpdir(), 'cairn-conformance-other-'));
        try {
          const other = queried(await options.create({ dir }));
          try {
            await other.append(id, 'elsewhere');
            const foreign = (await other.headOffset())!;
            await q.append(id, 'here');
            const error = await rejection(collect(q.allEvents({ after: foreign })));
            expect(error).toBeInstanceOf(TypeError);
            expect(error.message).toContain(foreign);
          } finally {
            await other.close();
          }
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      });
    });

    describe('truncation', () => {
      test('truncated events are not returned; an offset at one resumes at the next survivor', async ({
        ctx,
        q,
        id,
      }) => {
        const other = freshId();
        await q.appendBatch(id, ['a1', 'a2', 'a3'], { tags: ['t'] });
        await q.append(other, 'b1', { tags: ['t'] });
        await q.appendBatch(id, ['a4', 'a5'], { tags: ['t'] });
        const all = await collect(q.allEvents());
        await q.truncateBefore(id, 5);
        const check = async (j: QueryJournal) => {
          expect((await collect(j.allEvents())).map((e) => e.message)).toEqual(['b1', 'a5']);
          expect((await collect(j.eventsByTag('t'))).map((e) => e.message)).toEqual(['b1', 'a5']);
          expect((await collect(j.eventsByPersistenceId(id))).map((e) => e.message)).toEqual(['a5']);
          // all[1] is a2 (truncated): resume after it at the next survivor.
          expect((await collect(j.allEvents({ after: all[1]!.offset }))).map((e) => e.message)).toEqual([
            'b1',
            'a5',
          ]);
          // all[4] is a4 (truncated), all[5] is a5, the last.
          expect((await collect(j.allEvents({ after: all[4]!.offset }))).map((e) => e.message)).toEqual([
            'a5',
          ]);
          expect((await collect(j.allEvents({ after: all[5]!.offset }))).map((e) => e.message)).toEqual([]);
          expect(
            (await collect(j.eventsByPersistenceId(id, { after: all[0]!.offset }))).map((e) => e.message),
          ).toEqual(['a5']);
          expect(await j.headOffset()).toBe(all[5]!.offset);
        };
        await check(q);
        const reopened = queried(await ctx.reopen());
        // What a non-persistent journal keeps across a reopen is not promised either way.
        if (reopened.capabilities.persistent) await check(reopened);
      });
      test('truncating everything empties the queries but keeps offsets valid', async ({ q, id }) => {
        await q.appendBatch(id, range(1, 10));
        const head = (await q.headOffset())!;
        await q.truncateBefore(id, Number.MAX_SAFE_INTEGER);
        expect(await collect(q.allEvents())).toEqual([]);
        expect(await collect(q.allEvents({ after: head }))).toEqual([]);
        await q.append(id, 11);
        expect((await collect(q.allEvents({ after: head }))).map((e) => e.message)).toEqual([11]);
      });
    });

    describe('eventsByPersistenceId', () => {
      test('bounds by sequenceNr and ignores other ids', async ({ q, id }) => {
        await q.appendBatch(id, range(1, 10));
        await q.append(freshId(), 'other');
        await q.append(id, 11);
        const read = (o?: Parameters<QueryJournal['eventsByPersistenceId']>[1]) =>
          collect(q.eventsByPersistenceId(id, o)).then((es) => es.map((e) => e.sequenceNr));
        expect(await read()).toEqual(range(1, 11));
        expect(await read({ fromSequenceNr: 4, toSequenceNr: 7 })).toEqual([4, 5, 6, 7]);
        expect(await read({ fromSequenceNr: 9 })).toEqual([9, 10, 11]);
        expect(await read({ fromSequenceNr: 5, toSequenceNr: 4 })).toEqual([]);
        await expect(read({ fromSequenceNr: 0 })).rejects.toThrow(RangeError);
        await expect(collect(q.eventsByPersistenceId(''))).rejects.toThrow(TypeError);
      });
      test('a live query with toSequenceNr ends once it delivered the bound', async ({ q, id }) => {
        await q.appendBatch(id, [1, 2]);
        const reading = collect(q.eventsByPersistenceId(id, { toSequenceNr: 4, live: true }));
        await tick();
        await q.append(id, 3);
        await q.appendBatch(id, [4, 5]);
        expect((await reading).map((e) => e.sequenceNr)).toEqual([1, 2, 3, 4]);
      });
    });

    describe('live queries', () => {
      test('a live query delivers events committed after it started, then waits', async ({ q, id }) => {
        await q.append(id, 'before');
        const reading = take(q.allEvents({ live: true }), 4);
        await tick();
        await q.append(id, 'one');
        await tick();
        await q.appendBatch(id, ['two', 'three']);
        expect((await reading).map((e) => e.message)).toEqual(['before', 'one', 'two', 'three']);
      });
      test('after: headOffset() delivers only new events', async ({ q, id }) => {
        await q.appendBatch(id, ['old', 'older']);
        const reading = take(q.eventsByTag('new', { live: true, after: await q.headOffset() }), 2);
        await q.append(id, 'untagged');
        await q.appendBatch(id, ['n1', 'n2'], { tags: ['new'] });
        expect((await reading).map((e) => e.message)).toEqual(['n1', 'n2']);
      });
      test('several live readers with concurrent writers each see every event once, in one order', async ({
        q,
      }) => {
        const ids = range(1, 6).map(() => freshId());
        const total = ids.length * 30;
        const readers = range(1, 4).map(() => take(q.allEvents({ live: true }), total));
        const tagged = take(q.eventsByTag('odd', { live: true }), ids.length * 15);
        await Promise.all(
          ids.map(async (id) => {
            for (let i = 1; i <= 30; i += 3) {
              await Promise.all([
                q.append(id, i, { tags: i % 2 ? ['odd'] : [] }),
                q.appendBatch(id, [i + 1, i + 2], { tags: (m) => ((m as number) % 2 ? ['odd'] : []) }),
              ]);
            }
          }),
        );
        const current = keys(await collect(q.allEvents()));
        expect(current).toHaveLength(total);
        for (const reader of readers) expect(keys(await reader)).toEqual(current);
        const odd = await tagged;
        expect(odd.every((e) => (e.message as number) % 2 === 1)).toBe(true);
        expect(keys(odd)).toEqual(current.filter((k) => keys(odd).includes(k)));
        expect(new Set(keys(odd)).size).toBe(ids.length * 15);
      });
      test('a hundred waiting live readers add no timers', async ({ q, id }) => {
        const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
        await q.append(id, 'warm up');
        await tick();
        const before = timers();
        const readers = range(1, 100).map(() => take(q.allEvents({ live: true }), 3));
        await tick();
        expect(timers()).toBeLessThanOrEqual(before + 2);
        await q.appendBatch(id, ['a', 'b']);
        for (const r of readers) expect((await r).map((e) => e.message)).toEqual(['warm up', 'a', 'b']);
      });
      test('an aborted signal ends a waiting live query with an AbortError', async ({ q, id }) => {
        await q.append(id, 'a');
        const controller = new AbortController();
        const seen: unknown[] = [];
        const reading = (async () => {
          for await (const e of q.allEvents({ live: true, signal: controller.signal })) seen.push(e.message);
        })();
        // Parked after delivering "a" (a server-backed journal needs a few round trips for it).
        await until(() => seen.length === 1, 'the reader delivered "a"');
        await tick();
        controller.abort();
        const error = await rejection(reading);
        expect(error.name).toBe('AbortError');
        expect(seen).toEqual(['a']);
        const already = AbortSignal.abort();
        expect((await rejection(collect(q.allEvents({ signal: already })))).name).toBe('AbortError');
        // The journal is unharmed.
        expect(await q.append(id, 'b')).toBe(2);
      });
      test('closing the journal ends a live query with JournalClosedError', async ({ q, id }) => {
        await q.append(id, 'a');
        const reading = collect(q.allEvents({ live: true }));
        await tick();
        await q.close();
        const error = await rejection(reading);
        expect(isPersistenceError(error, 'ERR_JOURNAL_CLOSED')).toBe(true);
        await expect(q.headOffset()).rejects.toThrow(/closed/);
        await expect(collect(q.allEvents())).rejects.toThrow(/closed/);
      });
      test('break releases the query: the signal listener goes and the journal closes at once', async ({
        q,
        id,
      }) => {
        await q.appendBatch(id, range(1, 1000));
        const controller = new AbortController();
        let listeners = 0;
        const add = controller.signal.addEventListener.bind(controller.signal);
        const remove = controller.signal.removeEventListener.bind(controller.signal);
        controller.signal.addEventListener = ((...args: Parameters<typeof add>) => {
          listeners++;
          add(...args);
        }) as typeof add;
        controller.signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
          listeners--;
          remove(...args);
        }) as typeof remove;
        // A live query parked at the head, then broken out of by the next commit.
        const parked = take(q.allEvents({ live: true, signal: controller.signal }), 1001);
        await until(() => listeners === 1, 'the live query parked at the head');
        await q.append(id, 1001);
        expect(await parked).toHaveLength(1001);
        expect(listeners).toBe(0);
        // A query broken out of mid-page, and one never iterated.
        expect(await take(q.allEvents({ signal: controller.signal }), 10)).toHaveLength(10);
        q.allEvents({ live: true });
        expect(listeners).toBe(0);
        await q.close();
      });
    });
  });
}
