import { ActorSystem, DuplicatePersistenceIdError, UnknownEntityKindError } from '@cairn/actor-core';
import { account, MemoryWorld, sleep } from './runtime-fixtures';

async function bank(world: MemoryWorld, extra = {}) {
  const system = await ActorSystem.create({
    persistence: await world.open(),
    closePersistence: true,
    reporter: (r) => world.reports.push(r),
  });
  system.registerEntity('account', (id) => account(`account-${id}`, { snapshotEvery: 2, ...extra }).behavior);
  return system;
}

describe('deleteEntity', () => {
  it('makes events and snapshots unreadable at once; the entity starts afresh and never reuses a sequenceNr', async () => {
    const world = new MemoryWorld();
    let system = await bank(world);
    const ref = system.entityRef('account', '1');
    for (const amount of [1, 2, 3]) await ref.ask({ type: 'deposit', amount });
    expect(world.snapshotSequenceNrs('account-1')).toEqual([2]);
    await system.deleteEntity('account', '1');
    expect(system.metrics().activeEntities).toBe(0);
    expect(world.storedSequenceNrs('account-1')).toEqual([]);
    // Only the tombstone: the empty state at the old highest.
    expect(world.snapshotSequenceNrs('account-1')).toEqual([3]);
    const { journal, snapshots } = await world.open();
    expect(await journal.highestSequenceNr('account-1')).toBe(3);
    const read: unknown[] = [];
    for await (const e of journal.readFrom('account-1', 1)) read.push(e);
    expect(read).toEqual([]);
    expect((await snapshots.loadLatest('account-1'))?.state).toEqual({ balance: 0, history: 0 });
    await expect(ref.ask({ type: 'balance' })).resolves.toBe(0);
    await expect(ref.ask({ type: 'deposit', amount: 7 })).resolves.toBe(7);
    expect(world.storedSequenceNrs('account-1')).toEqual([4]);
    await system.terminate();
    // After a restart too.
    system = await bank(world);
    await expect(system.entityRef('account', '1').ask({ type: 'balance' })).resolves.toBe(7);
    await system.terminate();
    await journal.close();
    await snapshots.close();
  });

  it('messages sent while the deletion runs wait and reach the fresh incarnation in order', async () => {
    const world = new MemoryWorld();
    const system = await bank(world);
    const ref = system.entityRef('account', '2');
    await ref.ask({ type: 'deposit', amount: 100 });
    world.faults.writeDelayMs = 20;
    const deleting = system.deleteEntity('account', '2');
    await sleep(1);
    const replies = Promise.all([1, 2, 3].map((amount) => ref.ask({ type: 'deposit', amount })));
    await deleting;
    await expect(replies).resolves.toEqual([1, 3, 6]);
    await system.terminate();
  });

  it('an entity never used, or a kind never registered, or an id a spawned actor holds', async () => {
    const world = new MemoryWorld();
    const system = await bank(world);
    await expect(system.deleteEntity('account', 'never')).resolves.toBeUndefined();
    expect(world.snapshotSequenceNrs('account-never')).toEqual([]);
    await expect(system.deleteEntity('acount', '1')).rejects.toBeInstanceOf(UnknownEntityKindError);
    await expect(system.deleteEntity('account', '')).rejects.toThrow(TypeError);
    const spawned = await system.spawn(account('account-3').behavior);
    await spawned.ask({ type: 'deposit', amount: 1 });
    await expect(system.deleteEntity('account', '3')).rejects.toBeInstanceOf(DuplicatePersistenceIdError);
    expect(world.storedSequenceNrs('account-3')).toEqual([1]);
    await system.terminate();
  });

  it('a deletion interrupted after its tombstone leaves the entity empty, and running it again finishes it', async () => {
    const world = new MemoryWorld();
    const system = await bank(world, { snapshotEvery: undefined });
    const ref = system.entityRef('account', '4');
    for (const amount of [1, 2, 3]) await ref.ask({ type: 'deposit', amount });
    // A second system whose journal cannot truncate: the deletion stops after the tombstone.
    const journal = system.journal;
    const failingJournal = new Proxy(journal, {
      get: (target, property) => {
        if (property === 'truncateBefore') return () => Promise.reject(new Error('disk went away'));
        const value = Reflect.get(target, property);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const failing = await ActorSystem.create({
      persistence: { journal: failingJournal, snapshots: system.snapshots },
    });
    failing.registerEntity('account', (id) => account(`account-${id}`).behavior);
    await expect(failing.deleteEntity('account', '4')).rejects.toThrow('disk went away');
    expect(world.storedSequenceNrs('account-4')).toEqual([1, 2, 3]);
    expect(world.snapshotSequenceNrs('account-4')).toEqual([3]);
    await expect(failing.entityRef('account', '4').ask({ type: 'balance' })).resolves.toBe(0);
    await failing.terminate();
    // The first system's incarnation still holds its state in memory (see the TSDoc); deleting there finishes.
    await expect(ref.ask({ type: 'balance' })).resolves.toBe(6);
    await system.deleteEntity('account', '4');
    expect(world.storedSequenceNrs('account-4')).toEqual([]);
    await system.terminate();
  });
});
