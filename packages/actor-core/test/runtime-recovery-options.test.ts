import { EventSourcedBehavior, RecoveryFailedError, SequenceConflictError } from '@cairn/actor-core';
import { account, MemoryWorld, signalsOf } from './runtime-fixtures';

/** Account "r" with deposits 1, 2, 3, 4, 5 (sequenceNrs 1..5) and a snapshot at 2 (balance 3). */
async function history(): Promise<MemoryWorld> {
  const world = new MemoryWorld();
  const { journal, snapshots } = await world.open();
  for (const amount of [1, 2, 3, 4, 5]) await journal.append('r', { type: 'deposited', amount });
  await snapshots.save('r', 2, { balance: 3, history: 2 });
  await journal.close();
  await snapshots.close();
  return world;
}

async function recovered(world: MemoryWorld, recovery: object) {
  const system = await world.system();
  const { behavior, signals } = account('r', { recovery });
  const ref = await system.spawn(behavior);
  const balance = await ref.ask({ type: 'balance' });
  const done = signalsOf(signals, 'recoveryCompleted')[0]!;
  return { system, ref, balance, done };
}

describe('recovery options', () => {
  it("snapshot 'none' replays every event; toSequenceNr and replayMax stop early", async () => {
    const world = await history();
    let r = await recovered(world, {});
    expect([r.balance, r.done.fromSnapshot, r.done.replayed, r.done.sequenceNr]).toEqual([15, 2, 3, 5]);
    await r.system.terminate();

    r = await recovered(world, { snapshot: 'none' });
    expect([r.balance, r.done.fromSnapshot, r.done.replayed, r.done.sequenceNr]).toEqual([
      15,
      undefined,
      5,
      5,
    ]);
    await r.system.terminate();

    r = await recovered(world, { toSequenceNr: 4 });
    expect([r.balance, r.done.fromSnapshot, r.done.replayed, r.done.sequenceNr]).toEqual([10, 2, 2, 4]);
    // Behind the journal: a persist is refused, nothing written.
    await expect(r.ref.ask({ type: 'deposit', amount: 100 })).rejects.toBeInstanceOf(SequenceConflictError);
    expect(world.storedSequenceNrs('r')).toEqual([1, 2, 3, 4, 5]);
    await r.system.terminate();

    // A snapshot above toSequenceNr is passed over.
    r = await recovered(world, { toSequenceNr: 1 });
    expect([r.balance, r.done.fromSnapshot, r.done.sequenceNr]).toEqual([1, undefined, 1]);
    await r.system.terminate();

    r = await recovered(world, { replayMax: 1 });
    expect([r.balance, r.done.fromSnapshot, r.done.replayed, r.done.sequenceNr]).toEqual([6, 2, 1, 3]);
    await r.system.terminate();

    r = await recovered(world, { snapshot: 'none', replayMax: 0 });
    expect([r.balance, r.done.sequenceNr]).toEqual([0, 0]);
    await r.system.terminate();
  });

  it("snapshot 'none' on a journal truncated behind its snapshot fails recovery, named", async () => {
    const world = await history();
    const { journal } = await world.open();
    await journal.truncateBefore('r', 3);
    await journal.close();
    const system = await world.system();
    await expect(system.spawn(account('r', { recovery: { snapshot: 'none' } }).behavior)).rejects.toThrow(
      RecoveryFailedError,
    );
    await expect(system.spawn(account('r').behavior)).resolves.toBeDefined();
    await system.terminate();
  });

  it('rejects bad recovery options with a TypeError or RangeError', () => {
    expect(() => account('x', { recovery: { snapshot: 'oldest' } as never })).toThrow(TypeError);
    expect(() => account('x', { recovery: { toSequenceNr: 0 } })).toThrow(RangeError);
    expect(() => account('x', { recovery: { replayMax: -1 } })).toThrow(RangeError);
    expect(() => account('x', { recovery: { replay: 1 } as never })).toThrow(
      /unknown recovery option "replay"/,
    );
    expect(() => account('x', { recovery: 'latest' as never })).toThrow(TypeError);
  });
});

describe('event adapters that split or drop events', () => {
  it('fromJournal returning an array applies zero or more events in order', async () => {
    type Old = { type: 'transfer'; fee: number; amount: number } | { type: 'noise' };
    type New = { type: 'fee'; amount: number } | { type: 'deposit'; amount: number };
    const world = new MemoryWorld();
    const { journal } = await world.open();
    await journal.appendBatch('split', [
      { type: 'transfer', fee: 1, amount: 10 },
      { type: 'noise' },
      { type: 'transfer', fee: 2, amount: 20 },
    ] satisfies Old[]);
    await journal.close();
    const applied: New[] = [];
    const behavior = EventSourcedBehavior.create<'balance', New, number, number>({
      persistenceId: 'split',
      emptyState: 0,
      commandHandler: (s, _c, effect) => effect.reply(s),
      eventHandler: (s, e) => {
        applied.push(e);
        return e.type === 'fee' ? s - e.amount : s + e.amount;
      },
      eventAdapter: {
        fromJournal: (stored) => {
          const old = stored as Old;
          if (old.type === 'noise') return [];
          return [
            { type: 'deposit', amount: old.amount },
            { type: 'fee', amount: old.fee },
          ];
        },
      },
    });
    const system = await world.system();
    const ref = await system.spawn(behavior);
    await expect(ref.ask('balance')).resolves.toBe(27);
    expect(applied.map((e) => `${e.type}:${e.amount}`)).toEqual([
      'deposit:10',
      'fee:1',
      'deposit:20',
      'fee:2',
    ]);
    await system.terminate();
  });
});
