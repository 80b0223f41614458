import { MemoryMessageJournal } from '@cairn/actor-core';
import { GroupCommit } from '../src/group-commit';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Counts setTimeout calls made while `body` runs: each is one wake-up of the event loop. */
async function countTimers(body: () => Promise<void>): Promise<number> {
  const spy = jest.spyOn(globalThis, 'setTimeout');
  try {
    await body();
    return spy.mock.calls.length;
  } finally {
    spy.mockRestore();
  }
}

describe('group commit waits without spinning', () => {
  it('a write overdue behind the one commit in flight arms no timer loop (memory journal, slow commit)', async () => {
    const journal = await MemoryMessageJournal.open<string>({ maxBatchDelayMs: 10 });
    try {
      journal.faults.writeDelayMs = 500;
      let second: Promise<number> | undefined;
      const timers = await countTimers(async () => {
        const first = journal.append('a', 'one');
        await sleep(30);
        second = journal.append('b', 'two');
        await first;
      });
      await expect(second).resolves.toBe(1);
      // The sleeps and the injected delay take a few; a timer re-armed at 0 ms took hundreds.
      expect(timers).toBeLessThan(15);
    } finally {
      await journal.close();
    }
  });

  it('a write whose key is in the commit in flight waits for it without spinning, with commit slots free', async () => {
    let finish!: () => void;
    const commits: string[][] = [];
    const group = new GroupCommit<string, string>({
      maxBatchSize: 100,
      maxBatchDelayMs: 5,
      maxConcurrentCommits: 4,
      commit: (writes) => {
        commits.push([...writes]);
        if (commits.length > 1) return Promise.resolve();
        return new Promise<void>((resolve) => {
          finish = resolve;
        });
      },
    });
    let later: Promise<void> | undefined;
    const timers = await countTimers(async () => {
      const first = group.enqueue('a', 'a1', 1);
      await sleep(20);
      later = group.enqueue('a', 'a2', 1);
      await sleep(300);
      finish();
      await first;
    });
    await later;
    expect(commits).toEqual([['a1'], ['a2']]);
    expect(timers).toBeLessThan(10);
  });

  it('an overdue write of another key still starts its own commit while one is in flight (pipelining kept)', async () => {
    let finish!: () => void;
    const commits: string[][] = [];
    const group = new GroupCommit<string, string>({
      maxBatchSize: 100,
      maxBatchDelayMs: 5,
      maxConcurrentCommits: 2,
      commit: (writes) => {
        commits.push([...writes]);
        if (commits.length > 1) return Promise.resolve();
        return new Promise<void>((resolve) => {
          finish = resolve;
        });
      },
    });
    const first = group.enqueue('a', 'a1', 1);
    await sleep(20);
    // Stall on a write of the key in flight, then a write of another key arrives: it must not wait for
    // the slow commit.
    const blocked = group.enqueue('a', 'a2', 1);
    await sleep(30);
    await group.enqueue('b', 'b1', 1);
    expect(commits).toEqual([['a1'], ['b1']]);
    finish();
    await Promise.all([first, blocked]);
    expect(commits).toEqual([['a1'], ['b1'], ['a2']]);
  });
});
