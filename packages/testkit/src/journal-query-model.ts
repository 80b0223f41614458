import {
  canQuery,
  type EventEnvelope,
  type EventQuery,
  isPersistenceError,
  type MessageJournal,
} from '@cairn/actor-core';
import fc from 'fast-check';
import { CaseContext, type ConformanceExpect, collect, freshId, runnerOf } from './conformance-context';
import type { JournalConformanceOptions } from './journal-conformance';

type QueryJournal = MessageJournal<unknown> & EventQuery<unknown>;

type Command =
  | { kind: 'append'; id: number; count: number; tagged: boolean; wait: boolean }
  | { kind: 'truncate'; id: number; keep: number }
  | { kind: 'reader'; fromHead: boolean }
  | { kind: 'check' }
  | { kind: 'reopen' };

function commands(persistent: boolean): fc.Arbitrary<Command[]> {
  const id = fc.integer({ min: 0, max: 3 });
  const options: fc.Arbitrary<Command>[] = [
    fc.record({
      kind: fc.constant('append' as const),
      id,
      count: fc.integer({ min: 1, max: 4 }),
      tagged: fc.boolean(),
      wait: fc.boolean(),
    }),
    fc.record({ kind: fc.constant('truncate' as const), id, keep: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ kind: fc.constant('reader' as const), fromHead: fc.boolean() }),
    fc.constant({ kind: 'check' as const }),
  ];
  if (persistent) options.push(fc.constant({ kind: 'reopen' as const }));
  return fc.array(fc.oneof(...options), { minLength: 1, maxLength: 25 });
}

/** One appended event as the model knows it. */
interface ModelEvent {
  readonly key: string;
  readonly id: string;
  readonly sequenceNr: number;
  readonly batch: number;
  /** Appended with a tag function that tags the odd sequenceNrs. */
  readonly tagged: boolean;
  /** Logical times: the append was called at `issued`; it resolved at `resolved`. */
  readonly issued: number;
  resolved: number;
}

/** A live reader running beside the program: what it delivered, from where it started. */
class LiveReader {
  readonly delivered: EventEnvelope<unknown>[] = [];
  /** Keys of the events appended before it started (it must deliver none of them when it started at the head). */
  readonly before: ReadonlySet<string>;
  private running: Promise<void> | undefined;
  private error: unknown;

  constructor(
    before: ReadonlySet<string>,
    private readonly mine: (e: EventEnvelope<unknown>) => boolean,
    private readonly startAfter: string | undefined,
  ) {
    this.before = before;
  }

  /** Starts (or, after a reopen, resumes after its last delivered offset) on `journal`. */
  start(journal: QueryJournal): void {
    const after = this.delivered.at(-1)?.offset ?? this.startAfter;
    this.running = (async () => {
      try {
        for await (const e of journal.allEvents({ live: true, ...(after === undefined ? {} : { after }) })) {
          if (this.mine(e)) this.delivered.push(e);
        }
      } catch (e) {
        if (!isPersistenceError(e, 'ERR_JOURNAL_CLOSED')) this.error = e;
      }
    })();
  }

  /** Waits for the reader to end (the journal closed); rethrows anything but JournalClosedError. */
  async stopped(): Promise<void> {
    await this.running;
    if (this.error !== undefined) throw this.error;
  }
}

async function runProgram(
  expect: ConformanceExpect,
  ctx: CaseContext<MessageJournal<unknown>>,
  prefix: string,
  program: readonly Command[],
): Promise<void> {
  const journal = (): QueryJournal => {
    const j = ctx.store;
    if (!canQuery(j)) throw new Error('the journal does not declare capabilities.query');
    return j;
  };
  const mine = (e: EventEnvelope<unknown>) => e.persistenceId.startsWith(`${prefix}-`);
  const idOf = (n: number) => `${prefix}-${n}`;
  const events = new Map<string, ModelEvent>();
  const highest = new Map<string, number>();
  const lowWater = new Map<string, number>();
  let clock = 0;
  let batches = 0;
  let pending: Promise<void>[] = [];
  const readers: LiveReader[] = [];
  /** The global order seen so far (event keys): later observations must agree with it. */
  let seen: string[] = [];

  const survivors = () =>
    [...events.values()].filter((e) => e.sequenceNr >= (lowWater.get(e.id) ?? 1)).map((e) => e.key);
  const settle = async () => {
    await Promise.all(pending);
    pending = [];
  };
  /** The order of `keys` must agree with every order observed before (never reordered). */
  const agree = (keys: readonly string[]) => {
    const rank = new Map(seen.map((k, i) => [k, i]));
    const known = keys.filter((k) => rank.has(k));
    for (let i = 1; i < known.length; i++) {
      expect(rank.get(known[i]!)! > rank.get(known[i - 1]!)!).toBe(true);
    }
    // Merge: a new key goes just before the next key of `keys` already placed, or at the end when none
    // follows it (the current order extends the old one). Not "after the last known key before it": with
    // the event before it truncated there is none, and it would land at the front, ahead of events it
    // follows.
    const merged = [...seen];
    keys.forEach((k, i) => {
      if (merged.includes(k)) return;
      let at = merged.length;
      for (let j = i + 1; j < keys.length; j++) {
        const r = merged.indexOf(keys[j]!);
        if (r >= 0) {
          at = r;
          break;
        }
      }
      merged.splice(at, 0, k);
    });
    seen = merged;
  };
  /** The invariants of one current allEvents (everything settled): exactly the survivors, in a valid order. */
  const check = async () => {
    await settle();
    const all = (await collect(journal().allEvents())).filter(mine);
    const keys = all.map((e) => `${e.persistenceId}#${e.sequenceNr}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect([...keys].sort()).toEqual(survivors().sort());
    for (const e of all) expect(e.message).toBe(`${e.persistenceId}#${e.sequenceNr}`);
    // Real time: an append that resolved before another was called comes first; per id ascending;
    // a batch's events adjacent.
    const at = new Map(keys.map((k, i) => [k, i]));
    for (const a of keys) {
      for (const b of keys) {
        const ea = events.get(a)!;
        const eb = events.get(b)!;
        if (ea.resolved < eb.issued || (ea.id === eb.id && ea.sequenceNr < eb.sequenceNr)) {
          expect(at.get(a)! < at.get(b)!).toBe(true);
        }
      }
    }
    keys.forEach((k, i) => {
      const e = events.get(k)!;
      const next = keys[i + 1];
      const following = [...events.values()].find(
        (o) => o.batch === e.batch && o.sequenceNr === e.sequenceNr + 1,
      );
      if (following && at.has(following.key)) expect(next).toBe(following.key);
    });
    agree(keys);
    const tagged = (await collect(journal().eventsByTag(`${prefix}-odd`))).map(
      (e) => `${e.persistenceId}#${e.sequenceNr}`,
    );
    expect(tagged).toEqual(keys.filter((k) => events.get(k)!.tagged && events.get(k)!.sequenceNr % 2 === 1));
    return all;
  };

  for (const command of program) {
    switch (command.kind) {
      case 'append': {
        const id = idOf(command.id);
        const first = (highest.get(id) ?? 0) + 1;
        highest.set(id, first + command.count - 1);
        const batch = ++batches;
        const issued = ++clock;
        const created: ModelEvent[] = [];
        const messages = Array.from({ length: command.count }, (_, i) => {
          const e: ModelEvent = {
            key: `${id}#${first + i}`,
            id,
            sequenceNr: first + i,
            batch,
            tagged: command.tagged,
            issued,
            resolved: Number.POSITIVE_INFINITY,
          };
          events.set(e.key, e);
          created.push(e);
          return e.key;
        });
        const done = journal()
          .appendBatch(
            id,
            messages,
            command.tagged
              ? { tags: (m) => (Number((m as string).split('#')[1]) % 2 === 1 ? [`${prefix}-odd`] : []) }
              : undefined,
          )
          .then((seqs) => {
            expect(seqs).toEqual(created.map((e) => e.sequenceNr));
            const resolved = ++clock;
            for (const e of created) e.resolved = resolved;
          });
        if (command.wait) await done;
        else pending.push(done);
        break;
      }
      case 'truncate': {
        await settle();
        const id = idOf(command.id);
        const before = Math.max(1, (highest.get(id) ?? 0) + 1 - command.keep);
        lowWater.set(id, Math.max(lowWater.get(id) ?? 1, before));
        await journal().truncateBefore(id, before);
        break;
      }
      case 'reader': {
        await settle();
        const head = command.fromHead ? await journal().headOffset() : undefined;
        const reader = new LiveReader(new Set(command.fromHead ? events.keys() : []), mine, head);
        reader.start(journal());
        readers.push(reader);
        break;
      }
      case 'check':
        await check();
        break;
      case 'reopen': {
        await settle();
        await ctx.reopen();
        for (const r of readers) await r.stopped();
        for (const r of readers) r.start(journal());
        break;
      }
    }
  }
  const final = await check();
  // Live readers: let them catch up to the head, then each must have delivered every surviving event
  // from its start on, in the journal's order, each once, and nothing that was never appended.
  const finalKeys = final.map((e) => `${e.persistenceId}#${e.sequenceNr}`);
  const deadline = Date.now() + 10_000;
  for (const r of readers) {
    const want = finalKeys.filter((k) => !r.before.has(k));
    while (Date.now() < deadline) {
      const got = new Set(r.delivered.map((e) => `${e.persistenceId}#${e.sequenceNr}`));
      if (want.every((k) => got.has(k))) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const delivered = r.delivered.map((e) => `${e.persistenceId}#${e.sequenceNr}`);
    expect(new Set(delivered).size).toBe(delivered.length);
    for (const k of delivered) {
      expect(events.has(k)).toBe(true);
      expect(r.before.has(k)).toBe(false);
    }
    expect(delivered.filter((k) => want.includes(k))).toEqual(want);
    agree(delivered);
  }
  await ctx.reopen();
  for (const r of readers) await r.stopped();
}

/**
 * "Never skips, never reorders", checked against a model: fast-check generates random programs of
 * appends and batches (awaited or left in flight, so commits interleave), truncations, live readers
 * started from the beginning or from the head, checks and (persistent journals) reopens, which live
 * readers survive by resuming after their last offset. Every current query must return exactly the
 * surviving events, per id ascending, batches adjacent, real-time order respected, and in an order that
 * agrees with every order observed before; every live reader must deliver each surviving event after its
 * start exactly once, in that same order.
 */
export function journalQueryModelGroup(options: JournalConformanceOptions): void {
  const { describe, test, expect } = runnerOf(options);
  describe('queries, model-based (fast-check)', () => {
    test('random concurrent appends, truncations, reopens and live readers never skip or reorder', async () => {
      const ctx = await CaseContext.open(options.create, 'fresh');
      try {
        // Read from the instance; a journal without queries has nothing to check here.
        const { persistent, query } = ctx.store.capabilities;
        if (query !== true) {
          console.log('queries, model-based: skipped: the journal does not declare the query capability');
          return;
        }
        await fc.assert(
          fc.asyncProperty(commands(persistent), (program) =>
            runProgram(expect, ctx, freshId('qmodel'), program),
          ),
          { numRuns: options.queryModelRuns ?? 10 },
        );
      } finally {
        await ctx.dispose();
      }
    }, 240_000);
  });
}
