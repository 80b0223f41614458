import { LATENCY_BUCKETS_SECONDS, StashOverflowError, StorageError } from '@cairn/actor-core';
import { account, MemoryWorld, sleep } from './runtime-fixtures';

describe('ActorSystem metrics', () => {
  it('count live actors, recoveries (from snapshots, events replayed), failures, restarts and stash overflows', async () => {
    const world = new MemoryWorld();
    let system = await world.system();
    const first = await system.spawn(account('a', { snapshotEvery: 3 }).behavior);
    for (const amount of [1, 2, 3, 4]) await first.ask({ type: 'deposit', amount });
    await (await system.spawn(account('c').behavior)).ask({ type: 'deposit', amount: 1 });
    await system.terminate();

    system = await world.system();
    expect(system.metrics()).toMatchObject({ actors: 0, recoveries: 0 });
    await system.spawn(account('a', { snapshotEvery: 3 }).behavior); // snapshot at 3, replays 4
    await system.spawn(account('b').behavior); // nothing stored yet
    world.faults.failNextRead(); // c's replay
    await expect(system.spawn(account('c').behavior)).rejects.toThrow(/injected read failure/);

    const supervised = await system.spawn(
      account('d', { supervision: { minBackoffMs: 1, maxBackoffMs: 1, jitter: 0, maxRestarts: 1 } }).behavior,
    );
    world.faults.failNextWrite();
    await expect(supervised.ask({ type: 'deposit', amount: 1 })).rejects.toBeInstanceOf(StorageError);
    await expect(supervised.ask({ type: 'deposit', amount: 2 })).resolves.toBe(2); // after the restart

    const small = await system.spawn(account('e', { stashCapacity: 1 }).behavior);
    world.faults.writeDelayMs = 20;
    const persisting = small.ask({ type: 'deposit', amount: 1 });
    await sleep(1);
    const waiting = small.ask({ type: 'deposit', amount: 1 });
    await expect(small.ask({ type: 'deposit', amount: 1 })).rejects.toBeInstanceOf(StashOverflowError);
    await Promise.all([persisting, waiting]);

    const m = system.metrics();
    expect(m).toMatchObject({
      actors: 4, // a, b, d, e (c failed to start)
      recoveries: 5, // a, b, d, d again after its restart, e
      recoveryFailures: 1,
      recoveriesFromSnapshot: 1,
      eventsReplayed: 1, // a's event 4 (d's failed write stored nothing to replay)
      restarts: 1,
      failureStops: 1, // c
      stashOverflows: 1,
    });
    expect(m.recoverySeconds.count).toBe(6);
    expect(m.recoverySeconds.buckets.map((b) => b.le)).toEqual(LATENCY_BUCKETS_SECONDS);
    await system.terminate();
    expect(system.metrics().actors).toBe(0);
  });
});
