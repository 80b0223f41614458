import {
  ActorStoppedError,
  ActorSystem,
  AskTimeoutError,
  DuplicatePersistenceIdError,
  Effect,
  EventSourcedBehavior,
  isPersistenceError,
  SequenceConflictError,
  StashOverflowError,
  StorageError,
  WriteRejectedError,
} from '@cairn/actor-core';
import { type AccountCommand, account, eventually, MemoryWorld, signalsOf, sleep } from './runtime-fixtures';

describe('the contract example', () => {
  it('compiles and runs as the public contract shows it', async () => {
    type Cmd = { type: 'deposit'; amount: number } | { type: 'balance' };
    type Evt = { type: 'deposited'; amount: number };

    const account = (id: string) =>
      EventSourcedBehavior.create<Cmd, Evt, number>({
        persistenceId: `account-${id}`,
        emptyState: 0,
        commandHandler: (state, cmd) =>
          cmd.type === 'deposit'
            ? Effect.persist<Evt, number>({ type: 'deposited', amount: cmd.amount }).thenReply((s) => s)
            : Effect.reply(state),
        eventHandler: (state, evt) => state + evt.amount,
        snapshotEvery: 100,
        keepSnapshots: 2,
        deleteEventsOnSnapshot: false,
      });

    const config = { journal: { provider: 'memory' }, snapshots: { provider: 'memory' } };
    const system = await ActorSystem.create({ persistence: config });
    const ref = await system.spawn(account('42'));
    await expect(ref.ask({ type: 'deposit', amount: 10 })).resolves.toBe(10);
    ref.tell({ type: 'deposit', amount: 5 });
    await expect(ref.ask({ type: 'balance' })).resolves.toBe(15);
    await system.terminate();
    await expect(system.journal.highestSequenceNr('account-42')).rejects.toMatchObject({
      code: 'ERR_JOURNAL_CLOSED',
    });
  });
});

describe('recovery', () => {
  it('replays every event when there is no snapshot', async () => {
    const world = new MemoryWorld();
    const first = await world.system();
    const ref = await first.spawn(account('a').behavior);
    for (let i = 1; i <= 30; i++) await ref.ask({ type: 'deposit', amount: i });
    await first.terminate();

    const second = await world.system();
    const { behavior, signals } = account('a');
    const again = await second.spawn(behavior);
    await expect(again.ask({ type: 'balance' })).resolves.toBe(465);
    expect(signalsOf(signals, 'recoveryCompleted')).toEqual([
      expect.objectContaining({ replayed: 30, fromSnapshot: undefined, sequenceNr: 30 }),
    ]);
    await expect(again.ask({ type: 'deposit', amount: 1 })).resolves.toBe(466);
    expect(world.storedSequenceNrs('a')).toHaveLength(31);
    await second.terminate();
  });

  it('recovers an id with no events to the empty state', async () => {
    const world = new MemoryWorld();
    const system = await world.system();
    const { behavior, signals } = account('fresh');
    const ref = await system.spawn(behavior);
    await expect(ref.ask({ type: 'balance' })).resolves.toBe(0);
    expect(signalsOf(signals, 'recoveryCompleted')[0]).toMatchObject({ replayed: 0, sequenceNr: 0 });
    await system.terminate();
  });

  it('starts from the newest snapshot and replays only what follows it', async () => {
    const world = new MemoryWorld();
    const first = await world.system();
    const ref = await first.spawn(account('s', { snapshotEvery: 5 }).behavior);
    for (let i = 0; i < 12; i++) await ref.ask({ type: 'deposit', amount: 1 });
    await first.terminate();
    expect(world.snapshotSequenceNrs('s')).toEqual([5, 10]);

    const second = await world.system();
    const { behavior, signals } = account('s', { snapshotEvery: 5 });
    const again = await second.spawn(behavior);
    expect(signalsOf(signals, 'recoveryCompleted')[0]).toMatchObject({
      fromSnapshot: 10,
      replayed: 2,
      sequenceNr: 12,
      state: { balance: 12, history: 12 },
    });
    await expect(again.ask({ type: 'balance' })).resolves.toBe(12);
    await second.terminate();
  });

  it('falls back to an older snapshot when the newest is corrupt, and says so', async () => {
    const world = new MemoryWorld();
    const first = await world.system();
    const ref = await first.spawn(account('fb', { snapshotEvery: 5 }).behavior);
    for (let i = 0; i < 12; i++) await ref.ask({ type: 'deposit', amount: 2 });
    await first.terminate();

    // The store verifies the snapshot at 10 and finds it corrupt: it must skip to 5, never serve it.
    const { SnapshotCorruptedError } = await import('@cairn/actor-core');
    world.faults.failNextSnapshotLoad(
      new SnapshotCorruptedError({
        persistenceId: 'fb',
        sequenceNr: 10,
        key: 'fb#10',
        reason: 'CRC mismatch',
      }),
    );
    const second = await world.system();
    const { behavior, signals } = account('fb', { snapshotEvery: 5 });
    const again = await second.spawn(behavior);
    expect(signalsOf(signals, 'recoveryCompleted')[0]).toMatchObject({ fromSnapshot: 5, replayed: 7 });
    await expect(again.ask({ type: 'balance' })).resolves.toBe(24);
    expect(world.reports.map((r) => r.kind)).toContain('snapshot-skipped');
    await second.terminate();
  });

  it('falls back when a snapshot verifies but its state cannot be used (snapshotAdapter throws)', async () => {
    const world = new MemoryWorld();
    const first = await world.system();
    const ref = await first.spawn(account('ad', { snapshotEvery: 4 }).behavior);
    for (let i = 0; i < 9; i++) await ref.ask({ type: 'deposit', amount: 1 });
    await first.terminate();
    expect(world.snapshotSequenceNrs('ad')).toEqual([4, 8]);

    const second = await world.system();
    const { behavior, signals } = account('ad', {
      snapshotEvery: 4,
      snapshotAdapter: {
        fromSnapshot: (stored, sequenceNr) => {
          if (sequenceNr === 8) throw new Error('unknown snapshot schema');
          return stored as { balance: number; history: number };
        },
      },
    });
    const again = await second.spawn(behavior);
    expect(signalsOf(signals, 'snapshotSkipped')).toEqual([expect.objectContaining({ sequenceNr: 8 })]);
    expect(signalsOf(signals, 'recoveryCompleted')[0]).toMatchObject({ fromSnapshot: 4, replayed: 5 });
    await expect(again.ask({ type: 'balance' })).resolves.toBe(9);
    await second.terminate();
  });

  it('fails with RecoveryFailedError naming the first missing sequenceNr (truncated start)', async () => {
    const world = new MemoryWorld();
    const { journal, snapshots } = await world.open();
    await journal.appendBatch(
      'gap',
      [1, 2, 3, 4, 5].map((amount) => ({ type: 'deposited', amount })),
    );
    await journal.truncateBefore('gap', 3);
    const system = await ActorSystem.create({ persistence: { journal, snapshots }, closePersistence: true });
    const { behavior, signals } = account('gap');
    const error = await system.spawn(behavior).catch((e: unknown) => e);
    expect(isPersistenceError(error, 'ERR_RECOVERY_FAILED')).toBe(true);
    expect(error).toMatchObject({ name: 'RecoveryFailedError', persistenceId: 'gap', sequenceNr: 1 });
    expect(String((error as Error).message)).toMatch(/"gap".*sequenceNr 1 is missing/);
    expect(signalsOf(signals, 'recoveryFailed')).toHaveLength(1);
    expect(system.lookup('gap')).toBeUndefined();
    await system.terminate();
  });

  it('fails on a hole in the middle and on a missing tail', async () => {
    const world = new MemoryWorld();
    const { journal, snapshots } = await world.open();
    await journal.appendBatch(
      'mid',
      [1, 2, 3, 4, 5].map((amount) => ({ type: 'deposited', amount })),
    );
    await journal.appendBatch(
      'tail',
      [1, 2, 3, 4, 5].map((amount) => ({ type: 'deposited', amount })),
    );
    // A lost segment: entry 3 of "mid" and the last two of "tail" disappear behind the journal's back.
    world.journalData.logs.get('mid')!.events.splice(2, 1);
    world.journalData.logs.get('tail')!.events.splice(3, 2);
    const system = await ActorSystem.create({ persistence: { journal, snapshots }, closePersistence: true });
    await expect(system.spawn(account('mid').behavior)).rejects.toMatchObject({
      code: 'ERR_RECOVERY_FAILED',
      sequenceNr: 3,
    });
    await expect(system.spawn(account('tail').behavior)).rejects.toMatchObject({
      code: 'ERR_RECOVERY_FAILED',
      sequenceNr: 4,
      message: expect.stringMatching(/sequenceNr 4 is missing.*highest is at least 5/),
    });
    await system.terminate();
  });

  it('fails rather than replaying from scratch when a corrupt snapshot hides a truncated journal', async () => {
    const world = new MemoryWorld();
    const first = await world.system();
    const ref = await first.spawn(account('hidden', { snapshotEvery: 5, keepSnapshots: 1 }).behavior);
    for (let i = 0; i < 7; i++) await ref.ask({ type: 'deposit', amount: 1 });
    await first.terminate();
    // Someone else truncated behind the only snapshot, which then turns out corrupt.
    const { journal } = await world.open();
    await journal.truncateBefore('hidden', 6);
    const { SnapshotCorruptedError } = await import('@cairn/actor-core');
    world.faults.failNextSnapshotLoad(
      new SnapshotCorruptedError({
        persistenceId: 'hidden',
        sequenceNr: 5,
        key: 'hidden#5',
        reason: 'CRC mismatch',
      }),
    );
    const second = await world.system();
    await expect(second.spawn(account('hidden').behavior)).rejects.toMatchObject({
      code: 'ERR_RECOVERY_FAILED',
      sequenceNr: 1,
    });
    await second.terminate();
  });

  it('recovers from the events alone when the snapshot store names damage but no snapshot (a damaged listing)', async () => {
    const world = new MemoryWorld();
    const first = await world.system();
    const ref = await first.spawn(account('listing', { snapshotEvery: 3 }).behavior);
    for (let i = 0; i < 7; i++) await ref.ask({ type: 'deposit', amount: 1 });
    await first.terminate();
    const { SnapshotCorruptedError } = await import('@cairn/actor-core');
    const damage = new SnapshotCorruptedError({
      persistenceId: 'listing',
      key: 'snapshots:listing#*',
      reason: 'LMDB page structure damaged',
    });
    // The store itself throws (as LMDB does when a damaged page breaks its listing), naming no snapshot.
    const { journal, snapshots } = await world.open();
    const damaged = new Proxy(snapshots, {
      get: (target, property) => {
        if (property === 'loadLatest') return () => Promise.reject(damage);
        const value = Reflect.get(target, property);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const second = await ActorSystem.create({ persistence: { journal, snapshots: damaged } });
    const { behavior, signals } = account('listing');
    const again = await second.spawn(behavior);
    await expect(again.ask({ type: 'balance' })).resolves.toBe(7);
    expect(signalsOf(signals, 'snapshotSkipped')).toEqual([
      { type: 'snapshotSkipped', sequenceNr: 0, error: damage },
    ]);
    expect(signalsOf(signals, 'recoveryCompleted')).toEqual([expect.objectContaining({ replayed: 7 })]);
    await second.terminate();
    await journal.close();
    await snapshots.close();
  });

  it('fails when the snapshot is ahead of the journal', async () => {
    const world = new MemoryWorld();
    const { journal, snapshots } = await world.open();
    await journal.append('ahead', { type: 'deposited', amount: 1 });
    await snapshots.save('ahead', 3, { balance: 3, history: 3 });
    const system = await ActorSystem.create({ persistence: { journal, snapshots }, closePersistence: true });
    await expect(system.spawn(account('ahead').behavior)).rejects.toMatchObject({
      code: 'ERR_RECOVERY_FAILED',
      sequenceNr: 2,
    });
    await system.terminate();
  });

  it('fails with the read error as cause when the journal read fails', async () => {
    const world = new MemoryWorld();
    const { journal, snapshots } = await world.open();
    await journal.append('rf', { type: 'deposited', amount: 1 });
    world.faults.failNextRead();
    const system = await ActorSystem.create({ persistence: { journal, snapshots }, closePersistence: true });
    const error = (await system.spawn(account('rf').behavior).catch((e: unknown) => e)) as Error;
    expect(error).toMatchObject({ code: 'ERR_RECOVERY_FAILED' });
    expect(isPersistenceError(error.cause, 'ERR_STORAGE')).toBe(true);
    // Nothing stays registered: a second try works once the storage does.
    await expect(system.spawn(account('rf').behavior)).resolves.toBeDefined();
    await system.terminate();
  });

  it('upcasts old event shapes through the event adapter', async () => {
    const world = new MemoryWorld();
    const { journal, snapshots } = await world.open();
    await journal.appendBatch('v1', [
      { kind: 'credit', cents: 500 },
      { type: 'deposited', amount: 2 },
    ]);
    const system = await ActorSystem.create({ persistence: { journal, snapshots }, closePersistence: true });
    const ref = await system.spawn(
      account('v1', {
        eventAdapter: {
          toJournal: (event) => ({ ...event, v: 2 }),
          fromJournal: (stored) => {
            const old = stored as { kind?: string; cents?: number };
            if (old.kind === 'credit') return { type: 'deposited', amount: (old.cents ?? 0) / 100 };
            return stored as { type: 'deposited'; amount: number };
          },
        },
      }).behavior,
    );
    await expect(ref.ask({ type: 'balance' })).resolves.toBe(7);
    await ref.ask({ type: 'deposit', amount: 1 });
    const stored = [];
    for await (const e of journal.readFrom('v1', 3)) stored.push(e.message);
    expect(stored).toEqual([{ type: 'deposited', amount: 1, v: 2 }]);
    await system.terminate();
  });
});

describe('commands', () => {
  it('runs commands that wait behind a persist in arrival order', async () => {
    const world = new MemoryWorld();
    const system = await world.system();
    const ref = await system.spawn(account('order').behavior);
    world.faults.writeDelayMs = 5;
    const replies = Array.from({ length: 40 }, (_, i) =>
      i % 5 === 4
        ? ref.ask<number>({ type: 'balance' })
        : ref.ask<number>({ type: 'deposit', amount: i + 1 }),
    );
    const expected: number[] = [];
    let balance = 0;
    for (let i = 0; i < 40; i++) {
      if (i % 5 !== 4) balance += i + 1;
      expected.push(balance);
    }
    await expect(Promise.all(replies)).resolves.toEqual(expected);
    const { journal } = await world.open();
    const amounts = [];
    for await (const e of journal.readFrom('order', 1))
      amounts.push((e.message as { amount: number }).amount);
    expect(amounts).toEqual(expected.map((_, i) => i + 1).filter((n) => n % 5 !== 0));
    await system.terminate();
  });

  it('stashes commands that arrive during recovery and runs them after it, in order', async () => {
    const world = new MemoryWorld();
    const { journal } = await world.open();
    await journal.appendBatch('slow', [{ type: 'deposited', amount: 100 }]);
    world.faults.readDelayMs = 30;
    const system = await world.system();
    const spawned = system.spawn(account('slow').behavior);
    const early = system.lookup<AccountCommand>('slow');
    expect(early).toBeDefined();
    const replies = [
      early!.ask({ type: 'withdraw', amount: 30 }),
      early!.ask({ type: 'deposit', amount: 5 }),
      early!.ask({ type: 'balance' }),
    ];
    await spawned;
    world.faults.readDelayMs = 0;
    await expect(Promise.all(replies)).resolves.toEqual([70, 75, 75]);
    await system.terminate();
  });

  it('rejects what does not fit in the stash with StashOverflowError', async () => {
    const world = new MemoryWorld();
    const system = await world.system();
    const ref = await system.spawn(account('full', { stashCapacity: 3 }).behavior);
    world.faults.writeDelayMs = 20;
    const first = ref.ask({ type: 'deposit', amount: 1 });
    await sleep(1); // the first command is now persisting, not waiting
    const waiting = [1, 2, 3].map((amount) => ref.ask({ type: 'deposit', amount }));
    const overflow = ref.ask({ type: 'deposit', amount: 100 });
    await expect(overflow).rejects.toBeInstanceOf(StashOverflowError);
    await expect(overflow).rejects.toMatchObject({
      code: 'ERR_STASH_OVERFLOW',
      persistenceId: 'full',
      capacity: 3,
    });
    expect(() => ref.tell({ type: 'deposit', amount: 100 })).toThrow(StashOverflowError);
    await expect(Promise.all([first, ...waiting])).resolves.toEqual([1, 2, 4, 7]);
    await system.terminate();
  });

  it('fails the ask of a throwing command handler and carries on', async () => {
    const world = new MemoryWorld();
    const system = await world.system();
    const ref = await system.spawn(account('boom').behavior);
    await expect(ref.ask({ type: 'explode' })).rejects.toThrow('handler exploded');
    await expect(ref.ask({ type: 'deposit', amount: 3 })).resolves.toBe(3);
    await system.terminate();
  });

  it('times an unanswered ask out with AskTimeoutError', async () => {
    const world = new MemoryWorld();
    const system = await world.system();
    const ref = await system.spawn(account('quiet').behavior);
    await expect(ref.ask({ type: 'silent' }, { timeoutMs: 20 })).rejects.toBeInstanceOf(AskTimeoutError);
    await expect(ref.ask({ type: 'balance' }, { timeoutMs: 0 })).rejects.toBeInstanceOf(RangeError);
    await system.terminate();
  });

  it('runs thenRun and thenReply only once the events are durable and applied', async () => {
    const world = new MemoryWorld();
    const { journal, snapshots } = await world.open();
    const seen: Array<{ state: number; highest: number }> = [];
    const behavior = EventSourcedBehavior.create<number, number, number>({
      persistenceId: 'then',
      emptyState: 0,
      commandHandler: (_state, n) =>
        Effect.persist<number, number>([n, n])
          .thenRun((state) => {
            void journal.highestSequenceNr('then').then((highest) => seen.push({ state, highest }));
          })
          .thenReply((state) => state),
      eventHandler: (state, n) => state + n,
    });
    const system = await ActorSystem.create({ persistence: { journal, snapshots }, closePersistence: true });
    const ref = await system.spawn(behavior);
    world.faults.writeDelayMs = 10;
    await expect(ref.ask(5)).resolves.toBe(10);
    await eventually(() => seen.length === 1, 'thenRun');
    expect(seen).toEqual([{ state: 10, highest: 2 }]);
    await system.terminate();
  });

  it('stops on Effect.stop and rejects the commands still waiting', async () => {
    const world = new MemoryWorld();
    const system = await world.system();
    const { behavior, signals } = account('closing');
    const ref = await system.spawn(behavior);
    world.faults.writeDelayMs = 10;
    const deposit = ref.ask({ type: 'deposit', amount: 1 });
    // The stopping command's own ask settles with the stop, not at its (long) timeout.
    const close = ref.ask({ type: 'close' }, { timeoutMs: 600_000 });
    const after = ref.ask({ type: 'balance' });
    await expect(deposit).resolves.toBe(1);
    await expect(after).rejects.toBeInstanceOf(ActorStoppedError);
    await expect(close).rejects.toBeInstanceOf(ActorStoppedError);
    expect(ref.isStopped).toBe(true);
    expect(() => ref.tell({ type: 'balance' })).toThrow(ActorStoppedError);
    await eventually(() => signalsOf(signals, 'stopped').length === 1, 'stopped signal');
    expect(signalsOf(signals, 'stopped')[0]).toMatchObject({ reason: 'requested' });
    await system.terminate();
  });

  it('refuses a second live actor with the same persistenceId, and allows it after stop', async () => {
    const world = new MemoryWorld();
    const system = await world.system();
    const ref = await system.spawn(account('dup').behavior);
    await ref.ask({ type: 'deposit', amount: 4 });
    await expect(system.spawn(account('dup').behavior)).rejects.toBeInstanceOf(DuplicatePersistenceIdError);
    await expect(system.spawn(account('dup').behavior)).rejects.toThrow(/"dup" is already live/);
    await ref.stop();
    const again = await system.spawn(account('dup').behavior);
    await expect(again.ask({ type: 'balance' })).resolves.toBe(4);
    await system.terminate();
  });

  it('keeps two systems apart: same id, separate stores, nothing shared', async () => {
    const one = await new MemoryWorld().system();
    const two = await new MemoryWorld().system();
    const a = await one.spawn(account('same').behavior);
    const b = await two.spawn(account('same').behavior);
    await a.ask({ type: 'deposit', amount: 1 });
    await b.ask({ type: 'deposit', amount: 10 });
    await expect(a.ask({ type: 'balance' })).resolves.toBe(1);
    await one.terminate();
    await expect(b.ask({ type: 'balance' })).resolves.toBe(10);
    await two.terminate();
  });
});

describe('persist rejection and failure', () => {
  it('a rejected write (unserializable event) fails that ask and the actor carries on', async () => {
    const world = new MemoryWorld();
    const system = await world.system();
    const { behavior, signals } = account('rej');
    const ref = await system.spawn(behavior);
    await ref.ask({ type: 'deposit', amount: 5 });
    const error = await ref.ask({ type: 'unserializable' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WriteRejectedError);
    expect(signalsOf(signals, 'persistFailed')).toEqual([expect.objectContaining({ rejected: true })]);
    world.faults.rejectNextWrite('injected');
    await expect(ref.ask({ type: 'deposit', amount: 1 })).rejects.toMatchObject({
      code: 'ERR_WRITE_REJECTED',
    });
    await expect(ref.ask({ type: 'deposit', amount: 2 })).resolves.toBe(7);
    expect(ref.isStopped).toBe(false);
    expect(world.storedSequenceNrs('rej')).toEqual([1, 2]);
    await system.terminate();
  });

  it('a failed write stops the actor, rejects waiting asks with the cause, and applies nothing', async () => {
    const world = new MemoryWorld();
    const system = await world.system();
    const { behavior, signals } = account('fail');
    const ref = await system.spawn(behavior);
    await ref.ask({ type: 'deposit', amount: 10 });
    world.faults.writeDelayMs = 10;
    world.faults.failNextWrite();
    const failing = ref.ask({ type: 'depositMany', amounts: [1, 2, 3] });
    const waiting = [ref.ask({ type: 'balance' }), ref.ask({ type: 'deposit', amount: 7 })];
    const failure = await failing.catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(StorageError);
    for (const w of waiting) {
      const e = (await w.catch((x: unknown) => x)) as ActorStoppedError;
      expect(e).toBeInstanceOf(ActorStoppedError);
      expect(e.cause).toBe(failure);
    }
    expect(ref.isStopped).toBe(true);
    expect(signalsOf(signals, 'persistFailed')).toEqual([
      expect.objectContaining({ rejected: false, error: failure, events: expect.any(Array) }),
    ]);
    await eventually(() => signalsOf(signals, 'stopped').length === 1, 'stopped signal');
    expect(signalsOf(signals, 'stopped')[0]).toMatchObject({ reason: 'failed', error: failure });
    world.faults.writeDelayMs = 0;
    const again = await system.spawn(account('fail').behavior);
    await expect(again.ask({ type: 'balance' })).resolves.toBe(10);
    await system.terminate();
  });

  it("a second writer behind the actor's back makes its next persist fail with a sequence conflict", async () => {
    const world = new MemoryWorld();
    const system = await world.system();
    const ref = await system.spawn(account('race').behavior);
    await ref.ask({ type: 'deposit', amount: 1 });
    await system.journal.append('race', { type: 'deposited', amount: 1000 });
    await expect(ref.ask({ type: 'deposit', amount: 1 })).rejects.toBeInstanceOf(SequenceConflictError);
    expect(ref.isStopped).toBe(true);
    await system.terminate();
  });

  it('restarts with backoff under supervision, re-recovering, then runs the waiting commands', async () => {
    const world = new MemoryWorld();
    const system = await world.system();
    const { behavior, signals } = account('sup', {
      supervision: { minBackoffMs: 10, maxBackoffMs: 25, jitter: 0, maxRestarts: 5 },
    });
    const ref = await system.spawn(behavior);
    await ref.ask({ type: 'deposit', amount: 10 });
    world.faults.writeDelayMs = 5;
    world.faults.failNextWrite().failNextWrite().failNextWrite();
    const failing = ref.ask({ type: 'deposit', amount: 1 });
    const waiting = ref.ask({ type: 'deposit', amount: 2 });
    await expect(failing).rejects.toBeInstanceOf(StorageError);
    // The waiting command itself fails twice more (two more restarts), then the write goes through.
    const retried = [ref.ask({ type: 'deposit', amount: 4 })];
    await expect(waiting).rejects.toBeInstanceOf(StorageError);
    await expect(retried[0]).rejects.toBeInstanceOf(StorageError);
    await expect(ref.ask({ type: 'deposit', amount: 8 })).resolves.toBe(18);
    expect(signalsOf(signals, 'restarting').map((s) => [s.attempt, s.delayMs])).toEqual([
      [1, 10],
      [2, 20],
      [3, 25],
    ]);
    expect(signalsOf(signals, 'recoveryCompleted')).toHaveLength(4);
    expect(ref.isStopped).toBe(false);
    await system.terminate();
  });

  it('gives up after maxRestarts and stops, rejecting what waits', async () => {
    const world = new MemoryWorld();
    const system = await world.system();
    const { behavior, signals } = account('giveup', {
      supervision: { minBackoffMs: 1, maxBackoffMs: 2, jitter: 0, maxRestarts: 1 },
    });
    const ref = await system.spawn(behavior);
    world.faults.failNextWrite().failNextWrite();
    const first = ref.ask({ type: 'deposit', amount: 1 });
    const second = ref.ask({ type: 'deposit', amount: 2 });
    const third = ref.ask({ type: 'deposit', amount: 3 });
    await expect(first).rejects.toBeInstanceOf(StorageError);
    await expect(second).rejects.toBeInstanceOf(StorageError);
    await expect(third).rejects.toBeInstanceOf(ActorStoppedError);
    expect(ref.isStopped).toBe(true);
    expect(signalsOf(signals, 'restarting')).toHaveLength(1);
    await system.terminate();
  });

  it('restarts after a failed recovery during a restart, counting it as an attempt', async () => {
    const world = new MemoryWorld();
    const system = await world.system();
    const { behavior, signals } = account('rr', {
      supervision: { minBackoffMs: 1, maxBackoffMs: 4, jitter: 0, maxRestarts: 3 },
    });
    const ref = await system.spawn(behavior);
    await ref.ask({ type: 'deposit', amount: 1 });
    world.faults.failNextWrite();
    world.faults.failNextRead();
    await expect(ref.ask({ type: 'deposit', amount: 1 })).rejects.toBeInstanceOf(StorageError);
    await expect(ref.ask({ type: 'deposit', amount: 5 })).resolves.toBe(6);
    expect(signalsOf(signals, 'recoveryFailed')).toHaveLength(1);
    expect(signalsOf(signals, 'restarting').map((s) => s.attempt)).toEqual([1, 2]);
    await system.terminate();
  });
});

describe('terminate', () => {
  it('lets mailboxes and in-flight persists finish, then closes the persistence it opened', async () => {
    const faults = new (await import('@cairn/actor-core')).MemoryFaults();
    faults.writeDelayMs = 3;
    const system = await ActorSystem.create({
      persistence: { journal: { provider: 'memory', faults }, snapshots: { provider: 'memory' } },
    });
    const refs = await Promise.all(['t1', 't2', 't3'].map((id) => system.spawn(account(id).behavior)));
    for (const ref of refs) for (let i = 0; i < 20; i++) ref.tell({ type: 'deposit', amount: 1 });
    const balances = refs.map((ref) => ref.ask<number>({ type: 'balance' }));
    const done = system.terminate();
    await expect(system.spawn(account('late').behavior)).rejects.toBeInstanceOf(ActorStoppedError);
    await expect(refs[0]!.ask({ type: 'balance' })).rejects.toBeInstanceOf(ActorStoppedError);
    await done;
    await expect(Promise.all(balances)).resolves.toEqual([20, 20, 20]);
    expect(refs.every((r) => r.isStopped)).toBe(true);
    await expect(system.journal.highestSequenceNr('t1')).rejects.toMatchObject({
      code: 'ERR_JOURNAL_CLOSED',
    });
    await expect(system.terminate()).resolves.toBeUndefined();
  });

  it('leaves opened persistence open unless told to close it', async () => {
    const world = new MemoryWorld();
    const { journal, snapshots } = await world.open();
    const system = await ActorSystem.create({ persistence: { journal, snapshots } });
    const ref = await system.spawn(account('open').behavior);
    await ref.ask({ type: 'deposit', amount: 1 });
    await system.terminate();
    await expect(journal.highestSequenceNr('open')).resolves.toBe(1);
    await journal.close();
    await snapshots.close();
  });

  it('stops an actor waiting for a restart at once, rejecting its waiting commands', async () => {
    const world = new MemoryWorld();
    const system = await world.system();
    const ref = await system.spawn(
      account('waiting', { supervision: { minBackoffMs: 60_000, maxBackoffMs: 60_000, jitter: 0 } }).behavior,
    );
    world.faults.failNextWrite();
    world.faults.writeDelayMs = 5;
    const failing = ref.ask({ type: 'deposit', amount: 1 });
    const waiting = ref.ask({ type: 'deposit', amount: 2 });
    await expect(failing).rejects.toBeInstanceOf(StorageError);
    await system.terminate();
    await expect(waiting).rejects.toBeInstanceOf(ActorStoppedError);
  });
});

describe('validation', () => {
  const base = {
    persistenceId: 'v',
    emptyState: 0,
    commandHandler: () => Effect.none(),
    eventHandler: (s: number) => s,
  };
  it.each([
    [{ ...base, persistenceId: '' }, TypeError],
    [{ ...base, commandHandler: 'nope' }, TypeError],
    [{ ...base, snapshotEvery: 0 }, RangeError],
    [{ ...base, keepSnapshots: 1.5 }, RangeError],
    [{ ...base, deleteEventsOnSnapshot: true }, TypeError],
    [{ ...base, retainEventsBehindSnapshot: -1 }, RangeError],
    [{ ...base, supervision: { minBackoffMs: 10, maxBackoffMs: 5 } }, RangeError],
    [{ ...base, supervision: { jitter: 2 } }, RangeError],
    [{ ...base, snapshotEvry: 5 }, TypeError],
  ])('refuses bad behavior options %#', (options, type) => {
    expect(() => EventSourcedBehavior.create(options as never)).toThrow(type);
  });

  it('refuses bad system options and a non-behavior', async () => {
    await expect(ActorSystem.create({} as never)).rejects.toThrow(TypeError);
    await expect(
      ActorSystem.create({
        persistence: { journal: { provider: 'memory' }, snapshots: { provider: 'memory' } },
        askTimeoutMs: -1,
      }),
    ).rejects.toThrow(RangeError);
    await expect(
      ActorSystem.create({
        persistence: { journal: { provider: 'nope!' }, snapshots: { provider: 'memory' } },
      }),
    ).rejects.toMatchObject({ code: 'ERR_CONFIG' });
    const system = await new MemoryWorld().system();
    await expect(system.spawn({} as never)).rejects.toThrow(TypeError);
    expect(() => Effect.persist([])).toThrow(RangeError);
    await system.terminate();
  });
});
