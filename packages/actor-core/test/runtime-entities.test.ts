import { createHook } from 'node:async_hooks';
import {
  ActorStoppedError,
  ActorSystem,
  DuplicateEntityKindError,
  DuplicatePersistenceIdError,
  isPersistenceError,
  type Signal,
  UnknownEntityKindError,
} from '@cairn/actor-core';
import {
  type AccountEvent,
  type AccountState,
  account,
  eventually,
  MemoryWorld,
  signalsOf,
  sleep,
} from './runtime-fixtures';

type Signals = Signal<AccountEvent, AccountState>[];

/** Registers the account kind on `system`, collecting each entity's signals by id. */
function registerAccounts(system: ActorSystem, signals = new Map<string, Signals>()): Map<string, Signals> {
  system.registerEntity('account', (id) => {
    const all = signals.get(id) ?? [];
    signals.set(id, all);
    return account(`account-${id}`, { signalHandler: (_state, signal) => all.push(signal) }).behavior;
  });
  return signals;
}

async function systemOn(world: MemoryWorld, options: Partial<Parameters<typeof ActorSystem.create>[0]> = {}) {
  return ActorSystem.create({
    persistence: await world.open(),
    closePersistence: true,
    reporter: (r) => world.reports.push(r),
    ...options,
  });
}

describe('entities: refs by id', () => {
  it('spawns and recovers on the first message, reuses the actor afterwards, and starts it once for concurrent first messages', async () => {
    const world = new MemoryWorld();
    const { journal } = await world.open();
    await journal.append('account-42', { type: 'deposited', amount: 100 });
    const system = await systemOn(world);
    const signals = registerAccounts(system);
    const ref = system.entityRef('account', '42');
    expect(system.metrics().activeEntities).toBe(0);
    // Ten first messages at once: one actor, one recovery, replies in order.
    const replies = await Promise.all(
      Array.from({ length: 10 }, () => ref.ask({ type: 'deposit', amount: 1 })),
    );
    expect(replies).toEqual([101, 102, 103, 104, 105, 106, 107, 108, 109, 110]);
    expect(signalsOf(signals.get('42')!, 'recoveryCompleted')).toHaveLength(1);
    // Another ref to the same entity is the same actor.
    await expect(system.entityRef('account', '42').ask({ type: 'balance' })).resolves.toBe(110);
    expect(system.metrics()).toMatchObject({ activeEntities: 1, entityActivations: 1, recoveries: 1 });
    expect(system.lookup('account-42')).toBeDefined();
    await system.terminate();
  });

  it('refuses bad input with typed errors and changes nothing', async () => {
    const world = new MemoryWorld();
    const system = await systemOn(world);
    expect(() => system.entityRef('account', '1')).toThrow(UnknownEntityKindError);
    const unknown = (() => {
      try {
        system.entityRef('acount', '1');
      } catch (e) {
        return e;
      }
    })();
    registerAccounts(system);
    expect(isPersistenceError(unknown, 'ERR_UNKNOWN_ENTITY_KIND')).toBe(true);
    expect(() => system.entityRef('acount', '1')).toThrow(/"acount".*registered: "account"/);
    expect(() => system.entityRef('account', '')).toThrow(TypeError);
    expect(() => system.entityRef('account', 42 as unknown as string)).toThrow(TypeError);
    expect(() => system.entityRef('', '1')).toThrow(TypeError);
    const twice = (() => {
      try {
        system.registerEntity('account', () => account('other').behavior);
      } catch (e) {
        return e;
      }
    })();
    expect(twice).toBeInstanceOf(DuplicateEntityKindError);
    expect(isPersistenceError(twice, 'ERR_DUPLICATE_ENTITY_KIND')).toBe(true);
    // The first registration still serves the kind.
    await system.entityRef('account', '1').ask({ type: 'deposit', amount: 3 });
    expect(world.storedSequenceNrs('account-1')).toEqual([1]);
    expect(world.storedSequenceNrs('other')).toEqual([]);
    expect(() => system.registerEntity('x', 'nope' as never)).toThrow(TypeError);
    await expect(
      ActorSystem.create({ persistence: await world.open(), passivateAfterMs: 0 }),
    ).rejects.toThrow(RangeError);
    await expect(
      ActorSystem.create({ persistence: await world.open(), maxActiveEntities: 0 }),
    ).rejects.toThrow(RangeError);
    await expect(
      ActorSystem.create({ persistence: await world.open(), onConflict: 'retry' as never }),
    ).rejects.toThrow(TypeError);
    await system.terminate();
  });

  it('a factory that throws or returns no behavior fails that message only; a live spawned id is refused', async () => {
    const world = new MemoryWorld();
    const system = await systemOn(world);
    system.registerEntity('broken', (id) => {
      if (id === 'throws') throw new Error('no such customer');
      return 'not a behavior' as never;
    });
    await expect(system.entityRef('broken', 'throws').ask({})).rejects.toThrow('no such customer');
    await expect(system.entityRef('broken', 'other').ask({})).rejects.toThrow(/EventSourcedBehavior\.create/);
    registerAccounts(system);
    await system.spawn(account('account-7').behavior);
    await expect(system.entityRef('account', '7').ask({ type: 'balance' })).rejects.toBeInstanceOf(
      DuplicatePersistenceIdError,
    );
    expect(system.metrics().activeEntities).toBe(0);
    await system.terminate();
  });
});

describe('entities: passivation', () => {
  it('passivates after passivateAfterMs without messages; the next message recovers the state', async () => {
    const world = new MemoryWorld();
    const passivateAfterMs = 200;
    const system = await systemOn(world, { passivateAfterMs });
    const signals = registerAccounts(system);
    const ref = system.entityRef('account', 'a');
    await ref.ask({ type: 'deposit', amount: 5 });
    // Messages keep it alive: 10 messages 25 ms apart span more than passivateAfterMs. A machine that
    // stalls one gap past passivateAfterMs (a loaded CI box) passivates it legitimately: then only the
    // outcome is checked, not the history.
    let last = Date.now();
    let longestGap = 0;
    for (let i = 0; i < 10; i++) {
      await sleep(25);
      longestGap = Math.max(longestGap, Date.now() - last);
      await ref.ask({ type: 'deposit', amount: 1 });
      last = Date.now();
    }
    const stalled = longestGap >= passivateAfterMs;
    if (!stalled) expect(signalsOf(signals.get('a')!, 'stopped')).toEqual([]);
    await eventually(() => system.metrics().activeEntities === 0, 'the idle entity passivated');
    expect(system.lookup('account-a')).toBeUndefined();
    await expect(ref.ask({ type: 'balance' })).resolves.toBe(15);
    if (!stalled) {
      expect(signalsOf(signals.get('a')!, 'stopped')).toEqual([{ type: 'stopped', reason: 'passivated' }]);
      expect(signalsOf(signals.get('a')!, 'recoveryCompleted').map((s) => s.replayed)).toEqual([0, 11]);
      expect(system.metrics()).toMatchObject({
        entityActivations: 2,
        entityPassivations: 1,
        activeEntities: 1,
      });
    }
    await system.terminate();
  });

  it('maxActiveEntities passivates the least recently used first', async () => {
    const world = new MemoryWorld();
    const system = await systemOn(world, { maxActiveEntities: 2 });
    const signals = registerAccounts(system);
    const ask = (id: string) => system.entityRef('account', id).ask({ type: 'deposit', amount: 1 });
    await ask('a');
    await ask('b');
    await ask('a'); // b is now the least recently used
    await ask('c');
    await eventually(() => signalsOf(signals.get('b')!, 'stopped').length === 1, 'b passivated');
    expect(signalsOf(signals.get('b')!, 'stopped')).toEqual([{ type: 'stopped', reason: 'passivated' }]);
    expect(signalsOf(signals.get('a')!, 'stopped')).toEqual([]);
    expect(system.metrics()).toMatchObject({ activeEntities: 2, entityPassivations: 1 });
    expect(system.persistenceIds.sort()).toEqual(['account-a', 'account-c']);
    await expect(ask('b')).resolves.toBe(2); // recovered; a is the least recently used now
    await eventually(() => signalsOf(signals.get('a')!, 'stopped').length === 1, 'a passivated');
    await system.terminate();
  });

  it('a message arriving while the entity passivates waits and reaches the next incarnation, in order', async () => {
    const world = new MemoryWorld();
    const system = await systemOn(world, { maxActiveEntities: 1 });
    const signals = registerAccounts(system);
    const a = system.entityRef('account', 'a');
    await a.ask({ type: 'deposit', amount: 1 });
    world.faults.writeDelayMs = 30;
    // a's deposit is in flight when b's activation passivates a: its stop waits for that persist.
    const inFlight = a.ask({ type: 'deposit', amount: 10 });
    await sleep(5);
    const b = system.entityRef('account', 'b').ask({ type: 'deposit', amount: 1 });
    await sleep(1);
    expect(system.metrics().activeEntities).toBe(1);
    const later = [100, 1000, 10000].map((amount) => a.ask({ type: 'deposit', amount }));
    a.tell({ type: 'deposit', amount: 100000 });
    const last = a.ask({ type: 'balance' });
    await expect(inFlight).resolves.toBe(11);
    await expect(Promise.all(later)).resolves.toEqual([111, 1111, 11111]);
    await expect(last).resolves.toBe(111111);
    await b;
    const stops = signalsOf(signals.get('a')!, 'stopped');
    expect(stops[0]).toEqual({ type: 'stopped', reason: 'passivated' });
    expect(signalsOf(signals.get('a')!, 'recoveryCompleted').map((s) => s.sequenceNr)).toEqual([0, 2]);
    expect(world.reports.filter((r) => r.kind === 'tell-failed')).toEqual([]);
    await system.terminate();
  });

  it('Effect.stop() in an entity passivates it; the next message activates it again', async () => {
    const world = new MemoryWorld();
    const system = await systemOn(world);
    const signals = registerAccounts(system);
    const ref = system.entityRef('account', 'x');
    await ref.ask({ type: 'deposit', amount: 4 });
    await expect(ref.ask({ type: 'close' })).rejects.toBeInstanceOf(ActorStoppedError);
    await eventually(() => system.metrics().activeEntities === 0, 'the stopped entity released');
    await expect(ref.ask({ type: 'deposit', amount: 1 })).resolves.toBe(5);
    expect(signalsOf(signals.get('x')!, 'stopped')).toEqual([{ type: 'stopped', reason: 'requested' }]);
    expect(system.metrics()).toMatchObject({ entityActivations: 2, entityPassivations: 1 });
    await system.terminate();
  });

  it('terminate rejects later messages, stops every entity and leaves no timer behind', async () => {
    const live = new Set<number>();
    const hook = createHook({
      init: (id, type) => {
        if (type === 'Timeout') live.add(id);
      },
      destroy: (id) => live.delete(id),
    }).enable();
    try {
      const world = new MemoryWorld();
      const system = await systemOn(world, { passivateAfterMs: 60_000 });
      registerAccounts(system);
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          system.entityRef('account', `t${i}`).ask({ type: 'deposit', amount: 1 }),
        ),
      );
      expect(system.metrics().activeEntities).toBe(20);
      await system.terminate();
      const afterTerminate = [...live];
      expect(system.metrics().activeEntities).toBe(0);
      expect(() => system.entityRef('account', 't1').tell({ type: 'balance' })).toThrow(ActorStoppedError);
      await expect(system.entityRef('account', 't1').ask({ type: 'balance' })).rejects.toBeInstanceOf(
        ActorStoppedError,
      );
      await sleep(5); // destroy hooks run asynchronously
      expect(afterTerminate.filter((id) => live.has(id))).toEqual([]);
    } finally {
      hook.disable();
    }
  });
});
