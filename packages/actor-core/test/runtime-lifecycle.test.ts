import { ActorStoppedError, ActorSystem, Effect, EventSourcedBehavior } from '@cairn/actor-core';
import { account, eventually, MemoryWorld, signalsOf } from './runtime-fixtures';

describe('lifecycle details', () => {
  it('thenStop stops after the events are durable and the reply is sent', async () => {
    const world = new MemoryWorld();
    const system = await world.system();
    const behavior = EventSourcedBehavior.create<string, string, string[]>({
      persistenceId: 'last-words',
      emptyState: [],
      commandHandler: (_state, word) =>
        Effect.persist<string, string[]>(word)
          .thenReply((s) => s.length)
          .thenStop(),
      eventHandler: (state, word) => [...state, word],
    });
    const ref = await system.spawn(behavior);
    const first = ref.ask('bye');
    const second = ref.ask('never');
    await expect(first).resolves.toBe(1);
    await expect(second).rejects.toBeInstanceOf(ActorStoppedError);
    expect(ref.isStopped).toBe(true);
    expect(world.storedSequenceNrs('last-words')).toEqual([1]);
    await system.terminate();
  });

  it('an ask answered by Effect.stop settles at once: its reply, or ActorStoppedError', async () => {
    const world = new MemoryWorld();
    // The ask timeout is far beyond the test's: only an immediate settlement passes.
    const system = await ActorSystem.create({
      persistence: await world.open(),
      closePersistence: true,
      askTimeoutMs: 600_000,
      reporter: (r) => world.reports.push(r),
    });
    const behavior = (id: string) =>
      EventSourcedBehavior.create<'quit' | 'quit politely' | 'tell quit', never, number, string>({
        persistenceId: id,
        emptyState: 0,
        commandHandler: (_state, cmd, effect) =>
          cmd === 'quit politely' ? effect.reply('bye').thenStop() : effect.stop(),
        eventHandler: (n) => n,
      });
    const started = Date.now();
    const quitter = await system.spawn(behavior('quitter'));
    const error = await quitter.ask('quit').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ActorStoppedError);
    expect((error as Error).message).toContain('Effect.stop');
    expect(quitter.isStopped).toBe(true);
    const polite = await system.spawn(behavior('polite'));
    await expect(polite.ask('quit politely')).resolves.toBe('bye');
    const told = await system.spawn(behavior('told'));
    told.tell('tell quit');
    await eventually(() => told.isStopped, 'the told actor stopped');
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(world.reports.filter((r) => r.kind === 'tell-failed')).toEqual([]);
    await system.terminate();
  });

  it('terminate during a spawn lets the recovery finish, then stops the actor', async () => {
    const world = new MemoryWorld();
    const { journal } = await world.open();
    await journal.append('slow', { type: 'deposited', amount: 1 });
    world.faults.readDelayMs = 20;
    const system = await world.system();
    const { behavior, signals } = account('slow');
    const spawning = system.spawn(behavior);
    await system.terminate();
    const ref = await spawning;
    expect(ref.isStopped).toBe(true);
    expect(signalsOf(signals, 'recoveryCompleted')).toHaveLength(1);
    expect(signalsOf(signals, 'stopped')).toEqual([{ type: 'stopped', reason: 'terminated' }]);
  });

  it('reports a failed tell, a throwing thenRun and a throwing signal handler, and carries on', async () => {
    const world = new MemoryWorld();
    const system = await world.system();
    const behavior = EventSourcedBehavior.create<string, string, number>({
      persistenceId: 'noisy',
      emptyState: 0,
      commandHandler: (_state, cmd) => {
        if (cmd === 'throw') throw new Error('bad command');
        return Effect.persist<string, number>(cmd)
          .thenRun(() => {
            throw new Error('side effect broke');
          })
          .thenReply((n) => n);
      },
      eventHandler: (n) => n + 1,
      signalHandler: () => {
        throw new Error('signal handler broke');
      },
    });
    const ref = await system.spawn(behavior);
    ref.tell('throw');
    await expect(ref.ask('ok')).resolves.toBe(1);
    await eventually(() => world.reports.length >= 3, 'three reports');
    const kinds = world.reports.map((r) => r.kind);
    expect(kinds).toEqual(
      expect.arrayContaining(['tell-failed', 'side-effect-failed', 'signal-handler-failed']),
    );
    expect(world.reports.find((r) => r.kind === 'tell-failed')?.message).toContain('bad command');
    await system.terminate();
  });

  it('spawn on a terminated system is refused; terminate is idempotent', async () => {
    const system = await ActorSystem.create({
      persistence: { journal: { provider: 'memory' }, snapshots: { provider: 'memory' } },
    });
    await system.terminate();
    await expect(system.spawn(account('late').behavior)).rejects.toBeInstanceOf(ActorStoppedError);
    await expect(system.terminate()).resolves.toBeUndefined();
  });

  it('spawn with exclusive on a journal without leases runs the actor (its own locks keep other processes out); bad spawn options are refused', async () => {
    const system = await ActorSystem.create({
      persistence: { journal: { provider: 'memory' }, snapshots: { provider: 'memory' } },
    });
    try {
      const ref = await system.spawn(account('solo').behavior, { exclusive: true });
      expect(ref.isStopped).toBe(false);
      await ref.ask({ type: 'deposit', amount: 3 });
      await expect(
        system.spawn(account('bad').behavior, { exclusive: 'yes' as unknown as boolean }),
      ).rejects.toBeInstanceOf(TypeError);
      await expect(
        system.spawn(account('bad').behavior, { exclusive: true, leaseWaitMs: -1 }),
      ).rejects.toBeInstanceOf(RangeError);
      expect(system.lookup('bad')).toBeUndefined();
    } finally {
      await system.terminate();
    }
  });
});
