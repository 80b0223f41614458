import {
  ActorStoppedError,
  ActorSystem,
  type ActorSystemOptions,
  SequenceConflictError,
  type Signal,
} from '@cairn/actor-core';
import {
  type AccountEvent,
  type AccountState,
  account,
  eventually,
  MemoryWorld,
  signalsOf,
} from './runtime-fixtures';

type Signals = Signal<AccountEvent, AccountState>[];

/** Two systems on one shared journal and snapshot store, as two processes on one database would be. */
async function twoSystems(world: MemoryWorld, options: Partial<ActorSystemOptions> = {}) {
  const persistence = await world.open();
  const make = async () => {
    const signals: Signals = [];
    const system = await ActorSystem.create({
      persistence,
      reporter: (r) => world.reports.push(r),
      ...options,
    });
    system.registerEntity(
      'account',
      (id) => account(`account-${id}`, { signalHandler: (_s, signal) => signals.push(signal) }).behavior,
    );
    return { system, signals };
  };
  const a = await make();
  const b = await make();
  return {
    a,
    b,
    close: async () => {
      await a.system.terminate();
      await b.system.terminate();
      await persistence.journal.close();
      await persistence.snapshots.close();
    },
  };
}

describe('sequence conflicts', () => {
  it('an entity whose id another system wrote reloads from storage and retries the command once', async () => {
    const world = new MemoryWorld();
    const { a, b, close } = await twoSystems(world);
    await expect(a.system.entityRef('account', '1').ask({ type: 'deposit', amount: 1 })).resolves.toBe(1);
    await expect(b.system.entityRef('account', '1').ask({ type: 'deposit', amount: 10 })).resolves.toBe(11);
    // a's actor still holds balance 1 at sequenceNr 1: its persist conflicts, it reloads and retries.
    await expect(a.system.entityRef('account', '1').ask({ type: 'deposit', amount: 100 })).resolves.toBe(111);
    expect(signalsOf(a.signals, 'conflict')).toEqual([
      { type: 'conflict', error: expect.any(SequenceConflictError), retrying: true },
    ]);
    expect(signalsOf(a.signals, 'recoveryCompleted').map((s) => s.sequenceNr)).toEqual([0, 2]);
    expect(a.system.metrics()).toMatchObject({ conflictReloads: 1, failureStops: 0, activeEntities: 1 });
    // Alternating writers: every deposit lands exactly once.
    for (let i = 0; i < 10; i++) {
      await (i % 2 === 0 ? a : b).system.entityRef('account', '1').ask({ type: 'deposit', amount: 1000 });
    }
    await expect(b.system.entityRef('account', '1').ask({ type: 'deposit', amount: 0 })).resolves.toBe(
      10_111,
    );
    expect(world.storedSequenceNrs('account-1')).toEqual(Array.from({ length: 14 }, (_, i) => i + 1));
    await close();
  });

  it('the ask fails with the conflict only when the retry conflicts too; the entity reloads and carries on', async () => {
    const world = new MemoryWorld();
    const { a, close } = await twoSystems(world);
    const ref = a.system.entityRef('account', '2');
    await ref.ask({ type: 'deposit', amount: 1 });
    world.faults.failNextWrite(new SequenceConflictError('account-2', 1, 1));
    world.faults.failNextWrite(new SequenceConflictError('account-2', 1, 1));
    await expect(ref.ask({ type: 'deposit', amount: 5 })).rejects.toBeInstanceOf(SequenceConflictError);
    expect(signalsOf(a.signals, 'conflict').map((s) => s.retrying)).toEqual([true, false]);
    await eventually(() => signalsOf(a.signals, 'recoveryCompleted').length === 3, 'the second reload');
    await expect(ref.ask({ type: 'deposit', amount: 2 })).resolves.toBe(3);
    expect(a.system.metrics()).toMatchObject({ conflictReloads: 2, failureStops: 0 });
    // A single conflict costs the caller nothing.
    world.faults.failNextWrite(new SequenceConflictError('account-2', 2, 2));
    await expect(ref.ask({ type: 'deposit', amount: 4 })).resolves.toBe(7);
    await close();
  });

  it("onConflict 'stop' (system-wide or per behavior) fails the ask and stops the entity; the next message recovers it", async () => {
    const world = new MemoryWorld();
    const { a, b, close } = await twoSystems(world, { onConflict: 'stop' });
    await a.system.entityRef('account', '3').ask({ type: 'deposit', amount: 1 });
    await b.system.entityRef('account', '3').ask({ type: 'deposit', amount: 10 });
    await expect(
      a.system.entityRef('account', '3').ask({ type: 'deposit', amount: 100 }),
    ).rejects.toBeInstanceOf(SequenceConflictError);
    await eventually(() => a.system.metrics().activeEntities === 0, 'the entity stopped');
    expect(signalsOf(a.signals, 'stopped')).toEqual([
      { type: 'stopped', reason: 'failed', error: expect.any(SequenceConflictError) },
    ]);
    await expect(a.system.entityRef('account', '3').ask({ type: 'deposit', amount: 100 })).resolves.toBe(111);
    await close();

    // The behavior's own setting wins over the system's default.
    const world2 = new MemoryWorld();
    const persistence = await world2.open();
    const systems = await Promise.all([0, 1].map(() => ActorSystem.create({ persistence })));
    for (const system of systems) {
      system.registerEntity('account', (id) => account(`account-${id}`, { onConflict: 'stop' }).behavior);
    }
    await systems[0]!.entityRef('account', '4').ask({ type: 'deposit', amount: 1 });
    await systems[1]!.entityRef('account', '4').ask({ type: 'deposit', amount: 1 });
    await expect(
      systems[0]!.entityRef('account', '4').ask({ type: 'deposit', amount: 1 }),
    ).rejects.toBeInstanceOf(SequenceConflictError);
    for (const system of systems) await system.terminate();
  });

  it('spawned actors keep stop-on-conflict unless their behavior opts in', async () => {
    const world = new MemoryWorld();
    const persistence = await world.open();
    const system = await ActorSystem.create({ persistence });
    const plain = account('plain');
    const ref = await system.spawn(plain.behavior);
    await ref.ask({ type: 'deposit', amount: 1 });
    await persistence.journal.append('plain', { type: 'deposited', amount: 10 });
    await expect(ref.ask({ type: 'deposit', amount: 100 })).rejects.toBeInstanceOf(SequenceConflictError);
    await eventually(() => ref.isStopped, 'the plain actor stopped');
    await expect(ref.ask({ type: 'balance' })).rejects.toBeInstanceOf(ActorStoppedError);

    const optedIn = await system.spawn(account('opted-in', { onConflict: 'reload-and-retry' }).behavior);
    await optedIn.ask({ type: 'deposit', amount: 1 });
    await persistence.journal.append('opted-in', { type: 'deposited', amount: 10 });
    await expect(optedIn.ask({ type: 'deposit', amount: 100 })).resolves.toBe(111);
    expect(optedIn.isStopped).toBe(false);
    expect(() => account('bad', { onConflict: 'retry' as never })).toThrow(TypeError);
    await system.terminate();
  });
});
