import {
  canListSnapshotIds,
  isPersistenceError,
  type ListableSnapshotStore,
  type SnapshotStore,
} from '@cairn/actor-core';
import {
  type CaseContext,
  collect,
  type FactoryContext,
  freshId,
  type RunnerOption,
  registerCase,
  runnerOf,
} from './conformance-context';

export interface SnapshotConformanceOptions extends RunnerOption {
  /** Shown in the suite's title. */
  readonly name: string;
  /** Opens a store on `dir`; called again with the same dir after close() it must reopen the same data. */
  readonly create: (ctx: FactoryContext) => Promise<SnapshotStore<unknown>>;
}

export interface SnapshotCase {
  readonly store: SnapshotStore<unknown>;
  readonly id: string;
  readonly ctx: CaseContext<SnapshotStore<unknown>>;
}

type CaseBody = (c: SnapshotCase) => Promise<void>;

/** Registers `body` as one jest test per lifecycle, each with its own directory and id. */
export function snapshotCase(options: SnapshotConformanceOptions, title: string, body: CaseBody): void {
  registerCase(
    runnerOf(options),
    options.create,
    title,
    (ctx): SnapshotCase => ({
      get store() {
        return ctx.store;
      },
      id: freshId('snap'),
      ctx,
    }),
    body,
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function snapshotSaveLoadGroup(options: SnapshotConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  describe('save and loadLatest', () => {
    snapshotCase(options, 'loadLatest of an unknown id is undefined', async ({ store, id }) => {
      expect(await store.loadLatest(id)).toBeUndefined();
    });
    snapshotCase(options, 'a saved snapshot loads with its fields', async ({ store, id }) => {
      const before = Date.now();
      await store.save(id, 7, { balance: 42 });
      const after = Date.now();
      const loaded = await store.loadLatest(id);
      expect(loaded).toMatchObject({ persistenceId: id, sequenceNr: 7, state: { balance: 42 } });
      expect(loaded!.timestamp).toBeGreaterThanOrEqual(before);
      expect(loaded!.timestamp).toBeLessThanOrEqual(after);
    });
    snapshotCase(options, 'the newest by sequenceNr wins, whatever the save order', async ({ store, id }) => {
      await store.save(id, 5, 'five');
      await store.save(id, 9, 'nine');
      await store.save(id, 7, 'seven');
      expect((await store.loadLatest(id))?.state).toBe('nine');
    });
    snapshotCase(
      options,
      'saving twice at one sequenceNr replaces the earlier snapshot',
      async ({ store, id }) => {
        await store.save(id, 3, 'first');
        await store.save(id, 3, 'second');
        expect((await store.loadLatest(id))?.state).toBe('second');
        expect(await store.prune(id, 0)).toBe(1);
      },
    );
    snapshotCase(options, 'ids are independent and tricky ids do not collide', async ({ store, id }) => {
      const ids = ['a:b', 'a_b', 'a/b', 'A:B', '..', 'é', 'e\u0301', '🙂', 'x'.repeat(400)].map(
        (t) => `${id}|${t}`,
      );
      for (const [i, pid] of ids.entries()) await store.save(pid, i + 1, i);
      for (const [i, pid] of ids.entries()) {
        const loaded = await store.loadLatest(pid);
        expect(loaded?.state).toBe(i);
        expect(loaded?.sequenceNr).toBe(i + 1);
      }
    });
    snapshotCase(options, 'rich state round-trips', async ({ store, id }) => {
      const state = { when: new Date(7), map: new Map([['k', new Set([1])]]), big: 2n ** 70n, zero: -0 };
      await store.save(id, 1, state);
      const back = (await store.loadLatest(id))?.state as typeof state;
      expect(back.when.getTime()).toBe(7);
      expect(back.map.get('k')).toEqual(new Set([1]));
      expect(back.big).toBe(2n ** 70n);
      expect(Object.is(back.zero, -0)).toBe(true);
    });
    snapshotCase(options, 'a 1 MB state round-trips', async ({ store, id }) => {
      const state = { blob: 'y'.repeat(1024 * 1024) };
      await store.save(id, 1, state);
      expect((await store.loadLatest(id))?.state).toEqual(state);
    });
    snapshotCase(
      options,
      'a state mutated after save does not change what is stored',
      async ({ store, id }) => {
        const state = { n: 1 };
        const saved = store.save(id, 1, state);
        state.n = 2;
        await saved;
        expect((await store.loadLatest(id))?.state).toEqual({ n: 1 });
      },
    );
    snapshotCase(options, 'concurrent saves of many ids all land', async ({ store, id }) => {
      await Promise.all(Array.from({ length: 40 }, (_, i) => store.save(`${id}-${i}`, i + 1, i)));
      for (let i = 0; i < 40; i++) expect((await store.loadLatest(`${id}-${i}`))?.state).toBe(i);
    });
  });
}

export function snapshotCriteriaGroup(options: SnapshotConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  describe('criteria', () => {
    snapshotCase(options, 'maxSequenceNr is inclusive', async ({ store, id }) => {
      for (const seq of [2, 4, 6]) await store.save(id, seq, seq);
      expect((await store.loadLatest(id, { maxSequenceNr: 4 }))?.sequenceNr).toBe(4);
      expect((await store.loadLatest(id, { maxSequenceNr: 5 }))?.sequenceNr).toBe(4);
      expect(await store.loadLatest(id, { maxSequenceNr: 1 })).toBeUndefined();
    });
    snapshotCase(options, 'maxTimestamp is inclusive', async ({ store, id }) => {
      await store.save(id, 1, 'old');
      const first = (await store.loadLatest(id))!.timestamp;
      await sleep(5);
      await store.save(id, 2, 'new');
      expect((await store.loadLatest(id, { maxTimestamp: first }))?.state).toBe('old');
      expect(await store.loadLatest(id, { maxTimestamp: first - 1 })).toBeUndefined();
    });
    snapshotCase(options, 'minSequenceNr and minTimestamp are inclusive', async ({ store, id }) => {
      for (const seq of [2, 4]) await store.save(id, seq, seq);
      expect((await store.loadLatest(id, { minSequenceNr: 4 }))?.sequenceNr).toBe(4);
      expect(await store.loadLatest(id, { minSequenceNr: 5 })).toBeUndefined();
      expect((await store.loadLatest(id, { minSequenceNr: 2, maxSequenceNr: 3 }))?.sequenceNr).toBe(2);
      await sleep(5);
      await store.save(id, 6, 6);
      const newest = (await store.loadLatest(id))!.timestamp;
      expect((await store.loadLatest(id, { minTimestamp: newest }))?.sequenceNr).toBe(6);
      expect(await store.loadLatest(id, { minTimestamp: newest + 1 })).toBeUndefined();
      // The lower bounds select what delete removes too.
      await store.delete(id, { minTimestamp: newest });
      expect((await store.loadLatest(id))?.sequenceNr).toBe(4);
      await store.delete(id, { minSequenceNr: 3 });
      expect((await store.loadLatest(id))?.sequenceNr).toBe(2);
    });
    snapshotCase(options, '{} equals no criteria', async ({ store, id }) => {
      await store.save(id, 1, 'a');
      await store.save(id, 2, 'b');
      expect((await store.loadLatest(id, {}))?.state).toBe('b');
    });
    snapshotCase(options, 'both bounds apply together', async ({ store, id }) => {
      await store.save(id, 1, 'a');
      const t = (await store.loadLatest(id))!.timestamp;
      await sleep(5);
      await store.save(id, 2, 'b');
      await store.save(id, 3, 'c');
      expect((await store.loadLatest(id, { maxSequenceNr: 3, maxTimestamp: t }))?.state).toBe('a');
    });
  });
}

export function snapshotDeleteGroup(options: SnapshotConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  describe('delete and prune', () => {
    snapshotCase(options, 'delete without criteria removes all of the id', async ({ store, id }) => {
      await store.save(id, 1, 'a');
      await store.save(id, 2, 'b');
      await store.save(`${id}-other`, 1, 'keep');
      await store.delete(id);
      expect(await store.loadLatest(id)).toBeUndefined();
      expect((await store.loadLatest(`${id}-other`))?.state).toBe('keep');
    });
    snapshotCase(
      options,
      'delete with maxSequenceNr removes only those at or below it',
      async ({ store, id }) => {
        for (const seq of [1, 2, 3]) await store.save(id, seq, seq);
        await store.delete(id, { maxSequenceNr: 2 });
        expect((await store.loadLatest(id))?.sequenceNr).toBe(3);
        expect(await store.loadLatest(id, { maxSequenceNr: 2 })).toBeUndefined();
      },
    );
    snapshotCase(options, 'delete of an unknown id resolves', async ({ store, id }) => {
      await store.delete(id);
      await store.delete(id, { maxSequenceNr: 5 });
    });
    snapshotCase(
      options,
      'prune keeps the newest n and returns how many it deleted',
      async ({ store, id }) => {
        for (const seq of [1, 2, 3, 4, 5]) await store.save(id, seq, seq);
        expect(await store.prune(id, 2)).toBe(3);
        expect((await store.loadLatest(id))?.sequenceNr).toBe(5);
        expect((await store.loadLatest(id, { maxSequenceNr: 4 }))?.sequenceNr).toBe(4);
        expect(await store.loadLatest(id, { maxSequenceNr: 3 })).toBeUndefined();
      },
    );
    snapshotCase(
      options,
      'prune(id, 0) deletes all; on an unknown id it resolves 0',
      async ({ store, id }) => {
        await store.save(id, 1, 'a');
        await store.save(id, 2, 'b');
        expect(await store.prune(id, 0)).toBe(2);
        expect(await store.loadLatest(id)).toBeUndefined();
        expect(await store.prune(`${id}-unknown`, 0)).toBe(0);
        expect(await store.prune(`${id}-unknown`, 3)).toBe(0);
      },
    );
    snapshotCase(options, 'prune with more to keep than exist deletes nothing', async ({ store, id }) => {
      await store.save(id, 1, 'a');
      expect(await store.prune(id, 5)).toBe(0);
      expect((await store.loadLatest(id))?.state).toBe('a');
    });
  });
}

export function snapshotValidationGroup(options: SnapshotConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  const rejects = async (call: () => Promise<unknown>, kind: typeof TypeError | typeof RangeError) => {
    let error: unknown;
    try {
      await call();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(kind);
  };
  describe('bad arguments reject and change nothing', () => {
    snapshotCase(options, 'an empty or non-string persistenceId is a TypeError', async ({ store }) => {
      await rejects(() => store.save('', 1, 'x'), TypeError);
      await rejects(() => store.loadLatest(7 as unknown as string), TypeError);
      await rejects(() => store.prune(undefined as unknown as string, 1), TypeError);
    });
    snapshotCase(options, 'sequenceNr below 1 or fractional is a RangeError', async ({ store, id }) => {
      await rejects(() => store.save(id, 0, 'x'), RangeError);
      await rejects(() => store.save(id, 1.5, 'x'), RangeError);
      expect(await store.loadLatest(id)).toBeUndefined();
    });
    snapshotCase(options, 'a negative keep or criteria bound is a RangeError', async ({ store, id }) => {
      await store.save(id, 1, 'a');
      await rejects(() => store.prune(id, -1), RangeError);
      await rejects(() => store.loadLatest(id, { maxSequenceNr: -1 }), RangeError);
      await rejects(() => store.delete(id, { maxTimestamp: -1 }), RangeError);
      await rejects(() => store.delete(id, { minSequenceNr: -1 }), RangeError);
      await rejects(() => store.loadLatest(id, { minTimestamp: -1 }), RangeError);
      expect((await store.loadLatest(id))?.state).toBe('a');
    });
    snapshotCase(
      options,
      'a state that cannot be serialized is rejected with ERR_WRITE_REJECTED and nothing is stored',
      async ({ store, id }) => {
        let error: unknown;
        try {
          await store.save(id, 1, { f: () => 1 });
        } catch (e) {
          error = e;
        }
        expect((error as { code?: unknown })?.code).toBe('ERR_WRITE_REJECTED');
        expect(isPersistenceError(error, 'ERR_WRITE_REJECTED')).toBe(true);
        expect(await store.loadLatest(id)).toBeUndefined();
      },
    );
  });
}

export function snapshotCloseGroup(options: SnapshotConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  const isClosed = (e: unknown) =>
    isPersistenceError(e, 'ERR_SNAPSHOT_STORE_CLOSED') && (e as Error).name === 'SnapshotStoreClosedError';
  describe('close', () => {
    snapshotCase(options, 'close is idempotent', async ({ store }) => {
      await store.close();
      await Promise.all([store.close(), store.close()]);
    });
    snapshotCase(
      options,
      'every call after close rejects with SnapshotStoreClosedError',
      async ({ store, id }) => {
        await store.close();
        const calls: Array<() => Promise<unknown>> = [
          () => store.save(id, 1, 'x'),
          () => store.loadLatest(id),
          () => store.delete(id),
          () => store.prune(id, 1),
        ];
        for (const call of calls) {
          let error: unknown;
          try {
            await call();
          } catch (e) {
            error = e;
          }
          expect(isClosed(error)).toBe(true);
        }
      },
    );
    snapshotCase(options, 'a save issued before close completes', async ({ ctx, store, id }) => {
      const saved = store.save(id, 1, 'kept');
      await store.close();
      await saved;
      const reopened = await ctx.reopen();
      // What a non-persistent store keeps across a reopen is not promised either way.
      if (reopened.capabilities.persistent) expect((await reopened.loadLatest(id))?.state).toBe('kept');
    });
  });
}

export function snapshotReopenGroup(options: SnapshotConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  const durable = (title: string, body: CaseBody) =>
    snapshotCase(options, title, async (c) => {
      c.ctx.requires(c.store.capabilities.persistent, 'persistent');
      await body(c);
    });
  describe('reopen durability', () => {
    durable('snapshots survive close and reopen', async ({ ctx, store, id }) => {
      await store.save(id, 1, 'a');
      await store.save(id, 2, { b: new Date(3) });
      const reopened = await ctx.reopen();
      expect((await reopened.loadLatest(id))?.state).toEqual({ b: new Date(3) });
      expect((await reopened.loadLatest(id, { maxSequenceNr: 1 }))?.state).toBe('a');
    });
    durable('deletes and prunes survive reopen', async ({ ctx, store, id }) => {
      for (const seq of [1, 2, 3]) await store.save(id, seq, seq);
      await store.prune(id, 1);
      const reopened = await ctx.reopen();
      expect(await reopened.loadLatest(id, { maxSequenceNr: 2 })).toBeUndefined();
      expect(await reopened.prune(id, 0)).toBe(1);
    });
  });
}

/** The awkward ids every listing must hand back exactly (separators, case, unicode, a hashed-length id). */
const AWKWARD_IDS = ['a:b', 'a_b', 'a/b', 'A:B', '..', '.tmp', 'é', 'e\u0301', '🙂', 'x'.repeat(400)];

/**
 * The `listIds` capability (ListableSnapshotStore): persistenceIds() and listSnapshots(). Skipped, saying
 * so, for a store that does not declare it. Other cases' ids may share the storage (a database), so each
 * case looks only at the ids it made.
 */
export function snapshotListIdsGroup(options: SnapshotConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  const listable = (c: SnapshotCase): ListableSnapshotStore<unknown> => {
    c.ctx.requires(c.store.capabilities.listIds, 'listIds');
    if (!canListSnapshotIds(c.store)) throw new Error('listIds declared but canListSnapshotIds says no');
    return c.store;
  };
  /** The ids of this case that `store` lists, sorted, duplicates kept (so a repeat shows). */
  const listedOf = async (store: ListableSnapshotStore<unknown>, id: string) =>
    (await collect(store.persistenceIds())).filter((p) => p.startsWith(id)).sort();
  describe('listing ids (listIds)', () => {
    snapshotCase(options, 'persistenceIds lists each id with snapshots once', async (c) => {
      const store = listable(c);
      const [a, b] = [`${c.id}-a`, `${c.id}-b`];
      for (const seq of [1, 2, 3]) await store.save(a, seq, seq);
      await store.save(b, 1, 'b');
      expect(await listedOf(store, c.id)).toEqual([a, b]);
    });
    snapshotCase(options, 'an id whose snapshots were all deleted is no longer listed', async (c) => {
      const store = listable(c);
      const [a, b, kept] = [`${c.id}-a`, `${c.id}-b`, `${c.id}-c`];
      for (const seq of [1, 2]) await store.save(a, seq, seq);
      await store.save(b, 1, 'b');
      for (const seq of [1, 2]) await store.save(kept, seq, seq);
      await store.delete(a);
      expect(await store.prune(b, 0)).toBe(1);
      await store.delete(kept, { maxSequenceNr: 1 });
      expect(await listedOf(store, c.id)).toEqual([kept]);
      await store.save(a, 9, 'again');
      expect(await listedOf(store, c.id)).toEqual([a, kept]);
    });
    snapshotCase(options, 'ids with awkward characters are listed exactly', async (c) => {
      const store = listable(c);
      const ids = AWKWARD_IDS.map((t) => `${c.id}|${t}`);
      for (const [i, pid] of ids.entries()) await store.save(pid, i + 1, i);
      const listed = await listedOf(store, c.id);
      expect(listed).toEqual([...ids].sort());
      for (const pid of listed) expect((await store.loadLatest(pid))?.state).toBe(ids.indexOf(pid));
    });
    snapshotCase(options, 'listSnapshots lists each snapshot by sequenceNr', async (c) => {
      const store = listable(c);
      const before = Date.now();
      for (const seq of [5, 2, 9, 2]) await store.save(c.id, seq, seq);
      const after = Date.now();
      const listed = await store.listSnapshots(c.id);
      expect(listed.map((s) => s.sequenceNr)).toEqual([2, 5, 9]);
      for (const s of listed) {
        expect(s.timestamp).toBeGreaterThanOrEqual(before);
        expect(s.timestamp).toBeLessThanOrEqual(after);
      }
      expect(await store.listSnapshots(`${c.id}-none`)).toEqual([]);
      await store.prune(c.id, 1);
      expect((await store.listSnapshots(c.id)).map((s) => s.sequenceNr)).toEqual([9]);
    });
    snapshotCase(options, 'the listing rejects with SnapshotStoreClosedError once closed', async (c) => {
      const store = listable(c);
      await store.save(c.id, 1, 'x');
      await store.close();
      for (const call of [() => collect(store.persistenceIds()), () => store.listSnapshots(c.id)]) {
        let error: unknown;
        try {
          await call();
        } catch (e) {
          error = e;
        }
        expect(isPersistenceError(error, 'ERR_SNAPSHOT_STORE_CLOSED')).toBe(true);
      }
    });
    snapshotCase(options, 'listed ids survive reopen', async (c) => {
      listable(c);
      c.ctx.requires(c.store.capabilities.persistent, 'persistent');
      const ids = [`${c.id}-a`, `${c.id}|${AWKWARD_IDS[AWKWARD_IDS.length - 1]}`];
      for (const pid of ids) await c.store.save(pid, 1, pid);
      const reopened = await c.ctx.reopen();
      if (!canListSnapshotIds(reopened)) throw new Error('the reopened store no longer declares listIds');
      expect(await listedOf(reopened, c.id)).toEqual([...ids].sort());
      expect((await reopened.listSnapshots(ids[0]!)).map((s) => s.sequenceNr)).toEqual([1]);
    });
  });
}

/**
 * The snapshot store conformance suite: every group, each case on a fresh id and temp directory, on a
 * fresh store and on a reopened one.
 *
 *   snapshotConformance({ name: 'file', create: ({ dir }) => FileSnapshotStore.open({ path: dir }) });
 */
export function snapshotConformance(options: SnapshotConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  describe(`${options.name} snapshot store conformance`, () => {
    describe('capabilities', () => {
      snapshotCase(options, 'the store declares its capabilities on the instance', async ({ store }) => {
        const declared = store.capabilities as unknown;
        expect(typeof declared).toBe('object');
        expect(typeof store.capabilities.persistent).toBe('boolean');
        for (const [flag, value] of Object.entries(store.capabilities)) {
          expect([flag, typeof value]).toEqual([flag, 'boolean']);
        }
      });
      snapshotCase(options, 'each declared capability comes with its methods', async ({ store }) => {
        const methods: Record<string, string[]> = {
          listIds: ['persistenceIds', 'listSnapshots'],
          metrics: ['metrics'],
        };
        const missing: string[] = [];
        for (const [flag, names] of Object.entries(methods)) {
          if ((store.capabilities as unknown as Record<string, unknown>)[flag] !== true) continue;
          for (const name of names) {
            if (typeof (store as unknown as Record<string, unknown>)[name] !== 'function')
              missing.push(`${flag}: ${name}()`);
          }
        }
        expect(missing).toEqual([]);
      });
    });
    snapshotSaveLoadGroup(options);
    snapshotCriteriaGroup(options);
    snapshotDeleteGroup(options);
    snapshotValidationGroup(options);
    snapshotCloseGroup(options);
    snapshotReopenGroup(options);
    snapshotListIdsGroup(options);
  });
}
