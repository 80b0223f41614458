import { isPersistenceError, type MessageJournal } from '@cairn/actor-core';
import fc from 'fast-check';
import { CaseContext, type ConformanceExpect, collect, freshId, runnerOf } from './conformance-context';
import type { JournalConformanceOptions } from './journal-conformance';

/** The journal's contract as the simplest thing that could keep it: arrays in memory. */
class JournalModel {
  private readonly ids = new Map<string, { highest: number; low: number; messages: Map<number, unknown> }>();

  private log(id: string) {
    let log = this.ids.get(id);
    if (!log) {
      log = { highest: 0, low: 1, messages: new Map() };
      this.ids.set(id, log);
    }
    return log;
  }

  highest(id: string): number {
    return this.ids.get(id)?.highest ?? 0;
  }

  append(id: string, messages: readonly unknown[], expected: number | undefined): number[] | 'conflict' {
    const log = this.log(id);
    if (expected !== undefined && expected !== log.highest) return 'conflict';
    return messages.map((m) => {
      log.highest += 1;
      log.messages.set(log.highest, m);
      return log.highest;
    });
  }

  truncate(id: string, before: number): void {
    const log = this.log(id);
    for (const seq of log.messages.keys()) if (seq < before) log.messages.delete(seq);
    log.low = Math.max(log.low, before);
  }

  read(id: string, from: number, to: number, max: number): Array<[number, unknown]> {
    const log = this.ids.get(id);
    if (!log) return [];
    return [...log.messages.entries()]
      .filter(([seq]) => seq >= from && seq <= to)
      .sort((a, b) => a[0] - b[0])
      .slice(0, max);
  }
}

type Command =
  | { kind: 'append'; id: number; count: number; expected: 'none' | 'right' | 'wrong' }
  | { kind: 'truncate'; id: number; offset: number }
  | { kind: 'read'; id: number; from: number; span: number | undefined; max: number | undefined }
  | { kind: 'highest'; id: number }
  | { kind: 'reopen' };

function commands(persistent: boolean): fc.Arbitrary<Command[]> {
  const id = fc.integer({ min: 0, max: 2 });
  const options: fc.Arbitrary<Command>[] = [
    fc.record({
      kind: fc.constant('append' as const),
      id,
      count: fc.integer({ min: 1, max: 5 }),
      expected: fc.constantFrom('none' as const, 'right' as const, 'wrong' as const),
    }),
    fc.record({ kind: fc.constant('truncate' as const), id, offset: fc.integer({ min: -2, max: 4 }) }),
    fc.record({
      kind: fc.constant('read' as const),
      id,
      from: fc.integer({ min: 1, max: 25 }),
      span: fc.option(fc.integer({ min: 0, max: 15 }), { nil: undefined }),
      max: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
    }),
    fc.record({ kind: fc.constant('highest' as const), id }),
  ];
  if (persistent) options.push(fc.constant({ kind: 'reopen' as const }));
  return fc.array(fc.oneof(...options), { minLength: 1, maxLength: 30 });
}

async function runAgainstModel(
  expect: ConformanceExpect,
  ctx: CaseContext<MessageJournal<unknown>>,
  prefix: string,
  program: readonly Command[],
): Promise<void> {
  const model = new JournalModel();
  const idOf = (n: number) => `${prefix}-${n}`;
  let counter = 0;
  for (const command of program) {
    const journal = ctx.store;
    switch (command.kind) {
      case 'append': {
        const id = idOf(command.id);
        const messages = Array.from({ length: command.count }, () => ({ n: counter++ }));
        const highest = model.highest(id);
        const expected =
          command.expected === 'none' ? undefined : command.expected === 'right' ? highest : highest + 1;
        const want = model.append(id, messages, expected);
        const options = expected === undefined ? undefined : { expectedSequenceNr: expected };
        const got = await journal.appendBatch(id, messages, options).catch((e: unknown) => {
          if (isPersistenceError(e, 'ERR_SEQUENCE_CONFLICT')) return 'conflict' as const;
          throw e;
        });
        expect(got).toEqual(want);
        break;
      }
      case 'truncate': {
        const id = idOf(command.id);
        const before = Math.max(1, model.highest(id) + command.offset);
        model.truncate(id, before);
        await journal.truncateBefore(id, before);
        break;
      }
      case 'read': {
        const id = idOf(command.id);
        const to = command.span === undefined ? Number.MAX_SAFE_INTEGER : command.from + command.span;
        const max = command.max ?? Number.MAX_SAFE_INTEGER;
        const got = await collect(journal.readFrom(id, command.from, { toSequenceNr: to, max }));
        expect(got.map((e) => [e.sequenceNr, e.message])).toEqual(model.read(id, command.from, to, max));
        break;
      }
      case 'highest':
        expect(await journal.highestSequenceNr(idOf(command.id))).toBe(model.highest(idOf(command.id)));
        break;
      case 'reopen':
        await ctx.reopen();
        break;
    }
  }
}

/**
 * Model-based testing: fast-check generates random sequences of appends (with right, wrong or no
 * expectedSequenceNr), batches, truncations, range reads, highest queries and (for persistent journals)
 * reopens, runs them against the journal and against JournalModel, and shrinks any difference to a
 * minimal failing sequence.
 */
export function journalModelGroup(options: JournalConformanceOptions): void {
  const { describe, test, expect } = runnerOf(options);
  describe('model-based (fast-check)', () => {
    test('random command sequences behave like the model', async () => {
      const ctx = await CaseContext.open(options.create, 'fresh');
      try {
        // Reopens are among the commands only for a journal that keeps its data across them.
        const { persistent } = ctx.store.capabilities;
        await fc.assert(
          fc.asyncProperty(commands(persistent), (program) =>
            runAgainstModel(expect, ctx, freshId('model'), program),
          ),
          { numRuns: options.modelRuns ?? 25 },
        );
      } finally {
        await ctx.dispose();
      }
    });
  });
}
