import { ReadBatcher } from '../src/read-batcher';

/** A fetch that records its calls and answers when told to. */
function controlledFetch() {
  const calls: {
    keys: string[];
    answer: (found: Map<string, number>) => void;
    fail: (e: unknown) => void;
  }[] = [];
  const fetch = (keys: string[]) =>
    new Promise<Map<string, number>>((answer, fail) => {
      calls.push({ keys, answer, fail });
    });
  return { calls, fetch };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('ReadBatcher', () => {
  it('a lone read goes at once; reads asked for while it is in flight go together, each key once', async () => {
    const { calls, fetch } = controlledFetch();
    const batcher = new ReadBatcher(fetch, 0, 1, 100);
    const first = batcher.get('a');
    await tick();
    expect(calls.map((c) => c.keys)).toEqual([['a']]);
    const later = ['b', 'c', 'b'].map((k) => batcher.get(k));
    await tick();
    expect(calls).toHaveLength(1); // the one slot is busy: they wait for it
    calls[0]!.answer(new Map([['a', 1]]));
    expect(await first).toBe(1);
    await tick();
    expect(calls.map((c) => c.keys)).toEqual([['a'], ['b', 'c']]);
    calls[1]!.answer(new Map([['b', 2]]));
    // A key the statement did not find gets the default.
    expect(await Promise.all(later)).toEqual([2, 0, 2]);
  });

  it('reads asked for in one tick share a statement; maxBatch splits them and maxInFlight bounds the statements', async () => {
    const { calls, fetch } = controlledFetch();
    const batcher = new ReadBatcher(fetch, -1, 2, 3);
    const reads = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((k) => batcher.get(k));
    await tick();
    expect(calls.map((c) => c.keys)).toEqual([
      ['a', 'b', 'c'],
      ['d', 'e', 'f'],
    ]);
    calls[1]!.answer(new Map([['d', 4]]));
    await tick();
    expect(calls.map((c) => c.keys)).toEqual([['a', 'b', 'c'], ['d', 'e', 'f'], ['g']]);
    calls[0]!.answer(new Map());
    calls[2]!.answer(new Map([['g', 7]]));
    expect(await Promise.all(reads)).toEqual([-1, -1, -1, 4, -1, -1, 7]);
  });

  it("a failing statement fails its own batch's reads with its error, and the next batch still runs", async () => {
    const { calls, fetch } = controlledFetch();
    const batcher = new ReadBatcher(fetch, 0, 1, 100);
    const failing = [batcher.get('a'), batcher.get('b')];
    await tick();
    const after = batcher.get('c');
    const error = new Error('connection lost');
    calls[0]!.fail(error);
    for (const read of failing) await expect(read).rejects.toBe(error);
    await tick();
    expect(calls.map((c) => c.keys)).toEqual([['a', 'b'], ['c']]);
    calls[1]!.answer(new Map([['c', 3]]));
    expect(await after).toBe(3);
  });

  it('never answers a read from a statement sent before it was asked for', async () => {
    const { calls, fetch } = controlledFetch();
    const batcher = new ReadBatcher(fetch, 0, 1, 100);
    const early = batcher.get('a');
    await tick();
    const late = batcher.get('a'); // same key, asked for while the first statement is on the server
    calls[0]!.answer(new Map([['a', 1]]));
    expect(await early).toBe(1);
    await tick();
    expect(calls).toHaveLength(2);
    calls[1]!.answer(new Map([['a', 2]]));
    expect(await late).toBe(2);
  });
});
