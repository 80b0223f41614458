import { ActorSystem, MemoryFaults } from '@cairn/actor-core';
import { captureResources, expectNoLeakedResources } from '@cairn/testkit';
import { backoffDelay } from '../src/runtime/behavior';
import { type AccountCommand, account, MemoryWorld } from './runtime-fixtures';

describe('many actors', () => {
  it('recovers 10,000 actors in one system, each to its own state', async () => {
    const world = new MemoryWorld();
    const { journal, snapshots } = await world.open();
    const ids = Array.from({ length: 10_000 }, (_, i) => `acct-${i}`);
    await Promise.all(
      ids.map((id, i) =>
        journal.appendBatch(id, [
          { type: 'deposited', amount: i },
          { type: 'deposited', amount: 1 },
          { type: 'withdrawn', amount: 1 },
        ]),
      ),
    );
    for (let i = 0; i < 10_000; i += 1000) await snapshots.save(ids[i]!, 2, { balance: i + 1, history: 2 });
    await journal.close();
    await snapshots.close();

    const system = await world.system();
    const refs = await Promise.all(ids.map((id) => system.spawn(account(id).behavior)));
    expect(system.persistenceIds).toHaveLength(10_000);
    const balances = await Promise.all(refs.map((ref) => ref.ask<number>({ type: 'balance' })));
    expect(balances).toEqual(ids.map((_, i) => i));
    // They interleave: one deposit each, all in flight together.
    const after = await Promise.all(refs.map((ref) => ref.ask<number>({ type: 'deposit', amount: 1 })));
    expect(after).toEqual(ids.map((_, i) => i + 1));
    await system.terminate();
    // ~5 s on an idle machine; 32-55 s were seen beside other suites at load 9-12.
  }, 120_000);
});

describe('resources', () => {
  it('leaves no timer, handle or file open after terminate', async () => {
    const before = captureResources();
    const faults = new MemoryFaults();
    const system = await ActorSystem.create({
      persistence: { journal: { provider: 'memory', faults }, snapshots: { provider: 'memory', faults } },
      reporter: () => undefined,
    });
    const plain = await system.spawn(account('plain', { snapshotEvery: 2, keepSnapshots: 1 }).behavior);
    const supervised = await system.spawn(
      account('supervised', { supervision: { minBackoffMs: 30_000, maxBackoffMs: 30_000, jitter: 0 } })
        .behavior,
    );
    for (let i = 0; i < 5; i++) await plain.ask({ type: 'deposit', amount: 1 }, { timeoutMs: 60_000 });
    // A pending ask with a long timeout, and an actor waiting out a 30 s backoff: terminate must clear both.
    faults.failNextWrite();
    await supervised.ask({ type: 'deposit', amount: 1 }).catch(() => undefined);
    const waiting = supervised.ask<number>({ type: 'deposit', amount: 1 }, { timeoutMs: 60_000 });
    faults.writeDelayMs = 5;
    const inFlight = plain.ask<number>({ type: 'deposit', amount: 1 }, { timeoutMs: 60_000 });
    await system.terminate();
    await expect(inFlight).resolves.toBe(6);
    await expect(waiting).rejects.toMatchObject({ code: 'ERR_ACTOR_STOPPED' });
    await expectNoLeakedResources(before);
  });
});

describe('backoffDelay', () => {
  it('doubles from minBackoffMs up to maxBackoffMs, with jitter on top', () => {
    const s = { minBackoffMs: 100, maxBackoffMs: 1000, jitter: 0.5, maxRestarts: 10 };
    expect([1, 2, 3, 4, 5, 60].map((n) => backoffDelay(s, n, () => 0))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
    expect(backoffDelay(s, 1, () => 1)).toBe(150);
    expect(backoffDelay(s, 5, () => 0.5)).toBe(1250);
  });

  it('is typed per command at the ref', async () => {
    const system = await new MemoryWorld().system();
    const ref = await system.spawn(account('typed').behavior);
    const command: AccountCommand = { type: 'balance' };
    await expect(ref.ask(command)).resolves.toBe(0);
    // @ts-expect-error: not an AccountCommand
    expect(() => ref.tell({ type: 'nonsense' })).not.toThrow();
    await system.terminate();
  });
});
