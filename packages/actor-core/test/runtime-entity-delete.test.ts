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
    // Only the deletion marker, numbered after the old highest; no snapshot.
    expect(world.storedSequenceNrs('account-1')).toEqual([4]);
    expect(world.snapshotSequenceNrs('account-1')).toEqual([]);
    const { journal, snapshots } = await world.open();
    expect(await journal.highestSequenceNr('account-1')).toBe(4);
    const read: unknown[] = [];
    for await (const e of journal.readFrom('account-1', 1)) read.push(e);
    expect(read).toEqual([]);
    const withMarker: unknown[] = [];
    for await (const e of journal.readFrom('account-1', 1, { deletions: true })) withMarker.push(e);
    expect(withMarker).toEqual([
      {
        deleted: true,
        persistenceId: 'account-1',
        sequenceNr: 4,
        timestamp: expect.any(Number),
        tags: [],
        message: undefined,
      },
    ]);
    await expect(ref.ask({ type: 'balance' })).resolves.toBe(0);
    await expect(ref.ask({ type: 'deposit', amount: 7 })).resolves.toBe(7);
    expect(world.storedSequenceNrs('account-1')).toEqual([4, 5]);
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

  it('a deletion cut short after its marker leaves the entity empty, also over an older snapshot; running it again finishes it', async () => {
    const world = new MemoryWorld();
    const system = await bank(world);
    const ref = system.entityRef('account', '4');
    for (const amount of [1, 2, 3]) await ref.ask({ type: 'deposit', amount });
    expect(world.snapshotSequenceNrs('account-4')).toEqual([2]);
    // The truncation after the marker fails: the old events and the snapshot at 2 are still stored.
    world.faults.failNextTruncate();
    await expect(system.deleteEntity('account', '4')).rejects.toThrow('injected truncation failure');
    expect(world.storedSequenceNrs('account-4')).toEqual([1, 2, 3, 4]);
    expect(world.snapshotSequenceNrs('account-4')).toEqual([2]);
    // Recovery (from the snapshot at 2, then 3, then the marker) starts afresh after the marker.
    const other = await world.system();
    other.registerEntity('account', (id) => account(`account-${id}`).behavior);
    await expect(other.entityRef('account', '4').ask({ type: 'balance' })).resolves.toBe(0);
    await other.terminate();
    await expect(ref.ask({ type: 'balance' })).resolves.toBe(0);
    // Running the deletion again finishes it, without a second marker.
    await system.deleteEntity('account', '4');
    expect(world.storedSequenceNrs('account-4')).toEqual([4]);
    expect(world.snapshotSequenceNrs('account-4')).toEqual([]);
    await system.terminate();
  });

  it('on a journal without the deletion capability, a tombstone snapshot and a truncation', async () => {
    const world = new MemoryWorld();
    const { journal, snapshots } = await world.open();
    const plain = new Proxy(journal, {
      get: (target, property) => {
        if (property === 'capabilities') return { ...target.capabilities, deletion: false };
        const value = Reflect.get(target, property);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const system = await ActorSystem.create({ persistence: { journal: plain, snapshots } });
    system.registerEntity('account', (id) => account(`account-${id}`).behavior);
    const ref = system.entityRef('account', '5');
    for (const amount of [1, 2, 3]) await ref.ask({ type: 'deposit', amount });
    await system.deleteEntity('account', '5');
    expect(world.storedSequenceNrs('account-5')).toEqual([]);
    expect(world.snapshotSequenceNrs('account-5')).toEqual([3]);
    await expect(ref.ask({ type: 'deposit', amount: 7 })).resolves.toBe(7);
    expect(world.storedSequenceNrs('account-5')).toEqual([4]);
    await system.terminate();
    await journal.close();
    await snapshots.close();
  });
});
