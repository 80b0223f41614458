import { ActorSystem, SnapshotCorruptedError } from '@cairn/actor-core';
import { account, eventually, MemoryWorld, signalsOf } from './runtime-fixtures';

const corruptAt = (persistenceId: string, sequenceNr: number) =>
  new SnapshotCorruptedError({
    persistenceId,
    sequenceNr,
    key: `${persistenceId}#${sequenceNr}`,
    reason: 'CRC mismatch',
  });

describe('snapshots and journal truncation', () => {
  it('keeps the newest keepSnapshots and truncates only behind the oldest kept one', async () => {
    const world = new MemoryWorld();
    const system = await world.system();
    const options = { snapshotEvery: 5, keepSnapshots: 2, deleteEventsOnSnapshot: true } as const;
    const { behavior, signals } = account('trunc', options);
    const ref = await system.spawn(behavior);
    for (let i = 0; i < 22; i++) await ref.ask({ type: 'deposit', amount: 1 });
    await eventually(() => signalsOf(signals, 'eventsDeleted').length === 3, 'three truncations');
    // Snapshots 5, 10, 15, 20 were taken; 15 and 20 kept. The journal keeps everything after 15.
    expect(world.snapshotSequenceNrs('trunc')).toEqual([15, 20]);
    expect(world.storedSequenceNrs('trunc')).toEqual([16, 17, 18, 19, 20, 21, 22]);
    expect(signalsOf(signals, 'eventsDeleted').map((s) => s.toSequenceNr)).toEqual([6, 11, 16]);
    expect(signalsOf(signals, 'snapshotCompleted').map((s) => s.sequenceNr)).toEqual([5, 10, 15, 20]);
    await system.terminate();

    // The newest snapshot is corrupt: the oldest kept one still has every event after it.
    world.faults.failNextSnapshotLoad(corruptAt('trunc', 20));
    const second = await world.system();
    const again = account('trunc', options);
    const ref2 = await second.spawn(again.behavior);
    expect(signalsOf(again.signals, 'recoveryCompleted')[0]).toMatchObject({ fromSnapshot: 15, replayed: 7 });
    await expect(ref2.ask({ type: 'balance' })).resolves.toBe(22);
    await second.terminate();
  });

  it('never truncates past a kept snapshot it does not know of after a restart', async () => {
    const world = new MemoryWorld();
    const options = { snapshotEvery: 5, keepSnapshots: 3, deleteEventsOnSnapshot: true } as const;
    const first = await world.system();
    const ref = await first.spawn(account('known', options).behavior);
    for (let i = 0; i < 15; i++) await ref.ask({ type: 'deposit', amount: 1 });
    await first.terminate();
    expect(world.snapshotSequenceNrs('known')).toEqual([5, 10, 15]);
    expect(world.storedSequenceNrs('known')[0]).toBe(6);

    // A new incarnation only knows the snapshot it recovered from (15); the store still keeps 5 and 10.
    const second = await world.system();
    const { behavior, signals } = account('known', options);
    const ref2 = await second.spawn(behavior);
    for (let i = 0; i < 5; i++) await ref2.ask({ type: 'deposit', amount: 1 });
    await eventually(() => signalsOf(signals, 'snapshotCompleted').length === 1, 'snapshot at 20');
    // Store keeps 10, 15, 20 after pruning; the cell knows only 15 and 20: no truncation yet.
    expect(world.snapshotSequenceNrs('known')).toEqual([10, 15, 20]);
    expect(world.storedSequenceNrs('known')[0]).toBe(6);
    for (let i = 0; i < 5; i++) await ref2.ask({ type: 'deposit', amount: 1 });
    await eventually(() => signalsOf(signals, 'eventsDeleted').length === 1, 'truncation');
    // Kept: 15, 20, 25, all known; the journal keeps everything after 15.
    expect(world.snapshotSequenceNrs('known')).toEqual([15, 20, 25]);
    expect(world.storedSequenceNrs('known')[0]).toBe(16);
    await second.terminate();
  });

  it('retains retainEventsBehindSnapshot events behind the snapshot', async () => {
    const world = new MemoryWorld();
    const system = await world.system();
    const { behavior, signals } = account('retain', {
      snapshotEvery: 10,
      keepSnapshots: 1,
      deleteEventsOnSnapshot: true,
      retainEventsBehindSnapshot: 3,
    });
    const ref = await system.spawn(behavior);
    for (let i = 0; i < 12; i++) await ref.ask({ type: 'deposit', amount: 1 });
    await eventually(() => signalsOf(signals, 'eventsDeleted').length === 1, 'truncation');
    expect(world.storedSequenceNrs('retain')).toEqual([8, 9, 10, 11, 12]);
    await system.terminate();
  });

  it("truncates by the snapshot's own sequenceNr, not by where the actor got to meanwhile", async () => {
    const world = new MemoryWorld();
    const { journal, snapshots } = await world.open();
    // A snapshot store whose first save waits for a gate, so the actor moves on while it is in flight.
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    let saves = 0;
    const gated = Object.create(snapshots) as typeof snapshots;
    gated.save = async (id, seq, state) => {
      if (saves++ === 0) {
        const saving = snapshots.save(id, seq, state); // serialized now, with the state at seq
        await gate;
        return saving;
      }
      throw new Error('disk full');
    };
    const system = await ActorSystem.create({ persistence: { journal, snapshots: gated } });
    const { behavior, signals } = account('counter', {
      snapshotEvery: 3,
      keepSnapshots: 1,
      deleteEventsOnSnapshot: true,
    });
    const ref = await system.spawn(behavior);
    for (let i = 0; i < 6; i++) await ref.ask({ type: 'deposit', amount: 1 });
    openGate();
    await eventually(() => signalsOf(signals, 'snapshotFailed').length === 1, 'second snapshot failing');
    // Snapshot 3 truncates before 4 although the actor was at 6 when it became durable; snapshot 6 failed,
    // so events 4..6 must still be there.
    expect(signalsOf(signals, 'eventsDeleted').map((s) => s.toSequenceNr)).toEqual([4]);
    expect(world.storedSequenceNrs('counter')).toEqual([4, 5, 6]);
    await system.terminate();
    const second = await ActorSystem.create({ persistence: { journal, snapshots } });
    const again = account('counter');
    const ref2 = await second.spawn(again.behavior);
    expect(signalsOf(again.signals, 'recoveryCompleted')[0]).toMatchObject({ fromSnapshot: 3, replayed: 3 });
    await expect(ref2.ask({ type: 'balance' })).resolves.toBe(6);
    await second.terminate();
    await journal.close();
    await snapshots.close();
  });

  it('reports a failed snapshot save and carries on, truncating nothing for it', async () => {
    const world = new MemoryWorld();
    const system = await world.system();
    const { behavior, signals } = account('sfail', {
      snapshotEvery: 2,
      keepSnapshots: 1,
      deleteEventsOnSnapshot: true,
    });
    const ref = await system.spawn(behavior);
    world.faults.failNextSnapshotSave();
    for (let i = 0; i < 3; i++) await ref.ask({ type: 'deposit', amount: 1 });
    await eventually(() => signalsOf(signals, 'snapshotFailed').length === 1, 'snapshot failure');
    expect(signalsOf(signals, 'snapshotFailed')[0]).toMatchObject({ sequenceNr: 2, phase: 'save' });
    expect(world.storedSequenceNrs('sfail')).toEqual([1, 2, 3]);
    expect(ref.isStopped).toBe(false);
    await expect(ref.ask({ type: 'deposit', amount: 1 })).resolves.toBe(4);
    await eventually(() => signalsOf(signals, 'eventsDeleted').length === 1, 'truncation after snapshot 4');
    expect(world.snapshotSequenceNrs('sfail')).toEqual([4]);
    expect(world.storedSequenceNrs('sfail')).toEqual([]);
    await system.terminate();
  });

  it('snapshots when shouldSnapshot says so, and terminate waits for the snapshot', async () => {
    const world = new MemoryWorld();
    const system = await world.system();
    const { behavior } = account('pred', {
      shouldSnapshot: (state, event) => event.type === 'withdrawn' || state.balance >= 100,
    });
    const ref = await system.spawn(behavior);
    await ref.ask({ type: 'deposit', amount: 50 });
    await ref.ask({ type: 'withdraw', amount: 20 });
    await ref.ask({ type: 'deposit', amount: 10 });
    await ref.ask({ type: 'deposit', amount: 80 });
    await system.terminate();
    expect(world.snapshotSequenceNrs('pred')).toEqual([2, 4]);
    const second = await world.system();
    const again = account('pred');
    await second.spawn(again.behavior);
    expect(signalsOf(again.signals, 'recoveryCompleted')[0]).toMatchObject({
      fromSnapshot: 4,
      replayed: 0,
      state: { balance: 120, history: 4 },
    });
    await second.terminate();
  });

  it('stores what snapshotAdapter.toSnapshot makes of the state', async () => {
    const world = new MemoryWorld();
    const { journal, snapshots } = await world.open();
    const system = await ActorSystem.create({ persistence: { journal, snapshots } });
    const ref = await system.spawn(
      account('adapt', {
        snapshotEvery: 1,
        snapshotAdapter: { toSnapshot: (s) => ({ v: 2, ...s }), fromSnapshot: (stored) => stored as never },
      }).behavior,
    );
    await ref.ask({ type: 'deposit', amount: 3 });
    await system.terminate();
    await expect(snapshots.loadLatest('adapt')).resolves.toMatchObject({
      sequenceNr: 1,
      state: { v: 2, balance: 3, history: 1 },
    });
    await journal.close();
    await snapshots.close();
  });
});
