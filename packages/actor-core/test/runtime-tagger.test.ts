import {
  ActorSystem,
  canQuery,
  Effect,
  EventSourcedBehavior,
  isPersistenceError,
  MemoryMessageJournal,
  MemorySnapshotStore,
} from '@cairn/actor-core';

type Cmd = { type: 'deposit'; amount: number } | { type: 'pair'; amount: number } | { type: 'get' };
type Evt = { type: 'deposited'; amount: number } | { type: 'fee'; amount: number };

function account(tagger: (e: Evt) => readonly string[]) {
  return EventSourcedBehavior.create<Cmd, Evt, number>({
    persistenceId: 'acct-1',
    emptyState: 0,
    commandHandler: (state, cmd) => {
      if (cmd.type === 'get') return Effect.reply(state);
      const events: Evt[] =
        cmd.type === 'deposit'
          ? [{ type: 'deposited', amount: cmd.amount }]
          : [
              { type: 'deposited', amount: cmd.amount },
              { type: 'fee', amount: 1 },
            ];
      return Effect.persist<Evt, number>(events).thenReply((s) => s);
    },
    eventHandler: (state, e) => (e.type === 'deposited' ? state + e.amount : state - e.amount),
    tagger,
  });
}

async function start(tagger: (e: Evt) => readonly string[]) {
  const journal = await MemoryMessageJournal.open();
  const snapshots = await MemorySnapshotStore.open();
  const system = await ActorSystem.create({ persistence: { journal, snapshots }, reporter: () => undefined });
  const ref = await system.spawn(account(tagger));
  return { journal, snapshots, system, ref };
}

describe('EventSourcedBehavior tagger', () => {
  it('stores each event with its own tags, also within one atomic persist, for eventsByTag', async () => {
    const { journal, snapshots, system, ref } = await start((e) =>
      e.type === 'deposited' ? ['bank', 'deposit'] : ['bank', 'fee'],
    );
    expect(await ref.ask({ type: 'deposit', amount: 10 })).toBe(10);
    expect(await ref.ask({ type: 'pair', amount: 5 })).toBe(14);
    const stored = [];
    for await (const e of journal.readFrom('acct-1', 1)) stored.push([e.sequenceNr, e.tags]);
    expect(stored).toEqual([
      [1, ['bank', 'deposit']],
      [2, ['bank', 'deposit']],
      [3, ['bank', 'fee']],
    ]);
    if (!canQuery(journal)) throw new Error('memory journal offers no queries');
    const fees = [];
    for await (const e of journal.eventsByTag('fee')) fees.push(e.sequenceNr);
    expect(fees).toEqual([3]);
    await system.terminate();
    await journal.close();
    await snapshots.close();
  });

  it('rejects the persist (nothing stored, the actor carries on) when the tagger throws or gives a bad tag', async () => {
    let mode: 'ok' | 'throw' | 'empty' | 'long' = 'ok';
    const { journal, snapshots, system, ref } = await start(() => {
      if (mode === 'throw') throw new Error('no tags today');
      if (mode === 'empty') return [''];
      if (mode === 'long') return ['x'.repeat(257)];
      return ['bank'];
    });
    for (const bad of ['throw', 'empty', 'long'] as const) {
      mode = bad;
      const error = await ref.ask({ type: 'deposit', amount: 1 }).catch((e: unknown) => e);
      expect(isPersistenceError(error, 'ERR_WRITE_REJECTED')).toBe(true);
    }
    mode = 'ok';
    expect(await ref.ask({ type: 'deposit', amount: 7 })).toBe(7);
    expect(await journal.highestSequenceNr('acct-1')).toBe(1);
    expect(() => account('nope' as never)).toThrow(/tagger must be a function/);
    await system.terminate();
    await journal.close();
    await snapshots.close();
  });
});
