import type { EventEnvelope } from '@cairn/actor-core';
import {
  ProjectionFailedError,
  type ProjectionHandle,
  ProjectionRunningError,
  runProjection,
} from '@cairn/projection';
import { captureResources, expectNoLeakedResources } from '@cairn/testkit';
import { FakeLog, RecordingOffsets } from './fake-query';

const fast = { minBackoffMs: 1, maxBackoffMs: 5, jitter: 0 };

async function until(condition: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function fill(log: FakeLog, n: number, id = 'a'): void {
  for (let i = 1; i <= n; i++) log.append(id, { n: i });
}

describe('runProjection', () => {
  it('handles every event in order, live, saves the last handled offset on stop, and resumes after it', async () => {
    const log = new FakeLog();
    const offsets = new RecordingOffsets();
    fill(log, 5);
    const seen: string[] = [];
    const options = {
      name: 'p',
      query: log,
      source: { all: true } as const,
      offsets,
      handler: (e: EventEnvelope<unknown>) => {
        seen.push(e.offset);
      },
    };
    let handle = await runProjection(options);
    expect(handle.state).toBe('running');
    await until(() => seen.length === 5, 'the existing events');
    log.append('b', { n: 1 });
    await until(() => seen.length === 6, 'a live event');
    await handle.stop();
    expect(handle.state).toBe('stopped');
    expect(await handle.done).toEqual({ state: 'stopped' });
    expect(offsets.saved.get('p')).toBe('o5');
    expect(seen).toEqual(['o0', 'o1', 'o2', 'o3', 'o4', 'o5']);

    fill(log, 2, 'c');
    handle = await runProjection(options);
    await until(() => seen.length === 8, 'the events written while stopped');
    await handle.stop();
    expect(seen.slice(6)).toEqual(['o6', 'o7']);
  });

  it('saves only offsets whose handler resolved, for that event and every earlier one', async () => {
    const log = new FakeLog();
    const offsets = new RecordingOffsets();
    fill(log, 25);
    const handled = new Set<string>();
    const handle = await runProjection({
      name: 'p',
      query: log,
      source: { all: true },
      offsets,
      checkpointEvery: 10,
      handler: async (e) => {
        await new Promise((r) => setImmediate(r));
        // at every save so far, every earlier event was handled
        for (const saved of offsets.history) expect(handled.has(saved)).toBe(true);
        handled.add(e.offset);
      },
    });
    await until(() => handled.size === 25, 'every event');
    expect(offsets.history.slice(0, 2)).toEqual(['o9', 'o19']);
    await handle.stop();
    expect(offsets.history.at(-1)).toBe('o24');
  });

  it('saves a handled offset within checkpointAfterMs while it waits for new events', async () => {
    const log = new FakeLog();
    const offsets = new RecordingOffsets();
    fill(log, 3);
    const handle = await runProjection({
      name: 'p',
      query: log,
      source: { all: true },
      offsets,
      checkpointAfterMs: 20,
      handler: () => undefined,
    });
    await until(() => offsets.saved.get('p') === 'o2', 'the timed checkpoint');
    expect(handle.metrics()).toMatchObject({
      savedOffset: 'o2',
      lastOffset: 'o2',
      eventsHandled: 3,
      checkpoints: 1,
    });
    await handle.stop();
  });

  it('retries a failing event with backoff and goes on once it succeeds', async () => {
    const log = new FakeLog();
    const offsets = new RecordingOffsets();
    fill(log, 3);
    let failures = 2;
    const seen: number[] = [];
    const retried: number[] = [];
    const handle = await runProjection({
      name: 'p',
      query: log,
      source: { all: true },
      offsets,
      maxRetries: 3,
      backoff: fast,
      onRetry: (_e, attempt) => retried.push(attempt),
      handler: (e) => {
        if (e.sequenceNr === 2 && failures-- > 0) throw new Error('flaky');
        seen.push(e.sequenceNr);
      },
    });
    await until(() => seen.length === 3, 'all three events');
    expect(seen).toEqual([1, 2, 3]);
    expect(retried).toEqual([1, 2]);
    expect(handle.metrics().retries).toBe(2);
    await handle.stop();
  });

  it('fails past maxRetries without skipping: the failing event is the first offered on the next start', async () => {
    const log = new FakeLog();
    const offsets = new RecordingOffsets();
    fill(log, 4);
    const seen: number[] = [];
    let poison = true;
    const options = {
      name: 'p',
      query: log,
      source: { persistenceId: 'a' },
      offsets,
      maxRetries: 2,
      backoff: fast,
      handler: (e: EventEnvelope<unknown>) => {
        if (e.sequenceNr === 3 && poison) throw new Error('poison');
        seen.push(e.sequenceNr);
      },
    };
    const handle = await runProjection(options);
    const end = await handle.done;
    expect(end.state).toBe('failed');
    expect(handle.state).toBe('failed');
    const error = handle.error as ProjectionFailedError;
    expect(error).toBeInstanceOf(ProjectionFailedError);
    expect(error.code).toBe('ERR_PROJECTION_FAILED');
    expect(error.event).toEqual({ persistenceId: 'a', sequenceNr: 3, offset: 'o2' });
    expect(error.attempts).toBe(3);
    expect((error.cause as Error).message).toBe('poison');
    expect(error.message).toContain('a #3');
    expect(seen).toEqual([1, 2]);
    expect(offsets.saved.get('p')).toBe('o1');
    await handle.stop(); // a failed projection's stop() resolves: it has already ended

    poison = false;
    const again = await runProjection(options);
    await until(() => seen.length === 4, 'the rest');
    expect(seen).toEqual([1, 2, 3, 4]);
    await again.stop();
  });

  it('refuses a second instance of a name while the first runs, and allows it after stop', async () => {
    const log = new FakeLog();
    const offsets = new RecordingOffsets();
    const options = {
      name: 'p',
      query: log,
      source: { all: true } as const,
      offsets,
      handler: () => undefined,
    };
    const first = await runProjection(options);
    await expect(runProjection(options)).rejects.toBeInstanceOf(ProjectionRunningError);
    await expect(runProjection(options)).rejects.toMatchObject({ code: 'ERR_PROJECTION_RUNNING' });
    // another name on the same store runs beside it
    const other = await runProjection({ ...options, name: 'q' });
    await first.stop();
    const second = await runProjection(options);
    await second.stop();
    await other.stop();
  });

  it('reads one tag or one persistence id', async () => {
    const log = new FakeLog();
    const offsets = new RecordingOffsets();
    log.append('a', 1, ['x']);
    log.append('b', 2, ['y']);
    log.append('a', 3, ['x', 'y']);
    const byTag: unknown[] = [];
    const byId: unknown[] = [];
    const h1 = await runProjection({
      name: 't',
      query: log,
      source: { tag: 'y' },
      offsets,
      handler: (e) => {
        byTag.push(e.message);
      },
    });
    const h2 = await runProjection({
      name: 'i',
      query: log,
      source: { persistenceId: 'a' },
      offsets,
      handler: (e) => {
        byId.push(e.message);
      },
    });
    await until(() => byTag.length === 2 && byId.length === 2, 'both');
    expect(byTag).toEqual([2, 3]);
    expect(byId).toEqual([1, 3]);
    await h1.stop();
    await h2.stop();
  });

  it("applies the eventAdapter's fromJournal before the handler", async () => {
    const log = new FakeLog();
    log.append('a', { v: 1, amt: 5 });
    const seen: unknown[] = [];
    const handle = await runProjection<unknown, { amount: number }>({
      name: 'p',
      query: log,
      source: { all: true },
      offsets: new RecordingOffsets(),
      eventAdapter: {
        fromJournal: (stored, sequenceNr) => ({ amount: (stored as { amt: number }).amt * 10 + sequenceNr }),
      },
      handler: (e) => {
        seen.push(e.message);
      },
    });
    await until(() => seen.length === 1, 'the event');
    expect(seen).toEqual([{ amount: 51 }]);
    await handle.stop();
  });

  it('hands each event of a splitting adapter to the handler, and saves the offset after all of them', async () => {
    const log = new FakeLog();
    log.append('a', { parts: [1, 2] });
    log.append('a', { parts: [] });
    log.append('a', { parts: [3] });
    const offsets = new RecordingOffsets();
    const seen: string[] = [];
    const handle = await runProjection<unknown, number>({
      name: 'p',
      query: log,
      source: { all: true },
      offsets,
      live: false,
      eventAdapter: { fromJournal: (stored) => (stored as { parts: number[] }).parts },
      handler: (e) => {
        seen.push(`${e.sequenceNr}:${e.message}`);
      },
    });
    expect(await handle.done).toEqual({ state: 'stopped' });
    expect(seen).toEqual(['1:1', '1:2', '3:3']);
    expect(offsets.saved.get('p')).toBe('o2');
  });

  it('with live: false ends by itself after the events committed at its start', async () => {
    const log = new FakeLog();
    const offsets = new RecordingOffsets();
    fill(log, 3);
    const handle = await runProjection({
      name: 'p',
      query: log,
      source: { all: true },
      offsets,
      live: false,
      handler: () => undefined,
    });
    expect(await handle.done).toEqual({ state: 'stopped' });
    expect(offsets.saved.get('p')).toBe('o2');
  });

  it('restarts a failing query from the last handled event, and fails when it keeps failing', async () => {
    const log = new FakeLog();
    fill(log, 2);
    log.failQueries = 2;
    const seen: number[] = [];
    const handle = await runProjection({
      name: 'p',
      query: log,
      source: { all: true },
      offsets: new RecordingOffsets(),
      maxRetries: 2,
      backoff: fast,
      handler: (e) => {
        seen.push(e.sequenceNr);
      },
    });
    await until(() => seen.length === 2, 'the events');
    await handle.stop();

    log.failQueries = 5;
    const failing = await runProjection({
      name: 'p',
      query: log,
      source: { all: true },
      offsets: new RecordingOffsets(),
      maxRetries: 2,
      backoff: fast,
      handler: () => undefined,
    });
    const end = await failing.done;
    expect(end.state).toBe('failed');
    expect(failing.error?.message).toContain('query kept failing');
  });

  it('fails (and says so) when the journal is closed under it', async () => {
    const log = new FakeLog();
    const handle = await runProjection({
      name: 'p',
      query: log,
      source: { all: true },
      offsets: new RecordingOffsets(),
      handler: () => undefined,
    });
    log.close();
    const end = await handle.done;
    expect(end.state).toBe('failed');
    expect(handle.error?.message).toContain('journal was closed');
  });

  it('stops promptly during a retry backoff, without marking the failing event handled', async () => {
    const log = new FakeLog();
    const offsets = new RecordingOffsets();
    fill(log, 2);
    let attempts = 0;
    const handle = await runProjection({
      name: 'p',
      query: log,
      source: { all: true },
      offsets,
      backoff: { minBackoffMs: 60_000, maxBackoffMs: 60_000, jitter: 0 },
      handler: (e) => {
        if (e.sequenceNr === 2) {
          attempts++;
          throw new Error('down');
        }
      },
    });
    await until(() => attempts === 1, 'the first attempt');
    const started = Date.now();
    await handle.stop();
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(offsets.saved.get('p')).toBe('o0');
    expect(handle.state).toBe('stopped');
  });

  it('rejects stop() with ProjectionFailedError when the final offset save fails', async () => {
    const log = new FakeLog();
    const offsets = new RecordingOffsets();
    fill(log, 1);
    let handled = 0;
    const handle = await runProjection({
      name: 'p',
      query: log,
      source: { all: true },
      offsets,
      checkpointAfterMs: 60_000,
      handler: () => {
        handled++;
      },
    });
    await until(() => handled === 1, 'the event');
    offsets.failSaves = 1;
    await expect(handle.stop()).rejects.toBeInstanceOf(ProjectionFailedError);
    expect(handle.state).toBe('failed');
    expect(offsets.saved.has('p')).toBe(false);
  });

  it('rejects bad options with TypeError or RangeError and starts nothing', async () => {
    const log = new FakeLog();
    const offsets = new RecordingOffsets();
    const good = { name: 'p', query: log, source: { all: true } as const, offsets, handler: () => undefined };
    await expect(runProjection({ ...good, name: '' })).rejects.toBeInstanceOf(TypeError);
    await expect(runProjection({ ...good, source: { all: false } as never })).rejects.toBeInstanceOf(
      TypeError,
    );
    await expect(
      runProjection({ ...good, source: { tag: 'a', persistenceId: 'b' } as never }),
    ).rejects.toBeInstanceOf(TypeError);
    await expect(runProjection({ ...good, query: {} as never })).rejects.toBeInstanceOf(TypeError);
    await expect(runProjection({ ...good, offsets: {} as never })).rejects.toBeInstanceOf(TypeError);
    await expect(runProjection({ ...good, checkpointEvery: 0 })).rejects.toBeInstanceOf(RangeError);
    await expect(runProjection({ ...good, maxRetries: -1 })).rejects.toBeInstanceOf(RangeError);
    await expect(runProjection({ ...good, backoff: { jitter: 2 } })).rejects.toBeInstanceOf(RangeError);
    await expect(runProjection({ ...good, extra: 1 } as never)).rejects.toThrow(
      /unknown runProjection option/,
    );
    // none of them holds the name
    const handle = await runProjection(good);
    await handle.stop();
  });

  it('leaves no timers or handles behind after stop', async () => {
    const log = new FakeLog();
    fill(log, 3);
    const before = captureResources();
    const handles: ProjectionHandle[] = [];
    for (const name of ['a', 'b', 'c']) {
      handles.push(
        await runProjection({
          name,
          query: log,
          source: { all: true },
          offsets: new RecordingOffsets(),
          checkpointAfterMs: 50_000,
          handler: () => undefined,
        }),
      );
    }
    await until(() => handles.every((h) => h.metrics().eventsHandled === 3), 'every projection');
    for (const h of handles) await h.stop();
    await expectNoLeakedResources(before);
  });
});

describe('runProjection on the memory journal', () => {
  it('sees every event of concurrent writers exactly once across a stop and restart, in per-id order', async () => {
    const { MemoryMessageJournal } = await import('@cairn/actor-core');
    const journal = await MemoryMessageJournal.open();
    const offsets = journal.offsetStore();
    const seen: string[] = [];
    const options = {
      name: 'all',
      query: journal,
      source: { all: true } as const,
      offsets,
      checkpointEvery: 7,
      handler: (e: EventEnvelope<unknown>) => {
        seen.push(`${e.persistenceId}:${e.sequenceNr}`);
      },
    };
    let handle = await runProjection(options);
    const write = (from: number, to: number) =>
      Promise.all(
        ['a', 'b', 'c'].map(async (id) => {
          for (let i = from; i <= to; i++) await journal.append(id, i);
        }),
      );
    await write(1, 40);
    await until(() => seen.length === 120, 'the first 120 events');
    await handle.stop();
    await write(41, 50);
    handle = await runProjection(options);
    await until(() => seen.length === 150, 'the rest');
    await handle.stop();
    expect(new Set(seen).size).toBe(150);
    for (const id of ['a', 'b', 'c']) {
      const mine = seen.filter((s) => s.startsWith(`${id}:`)).map((s) => Number(s.split(':')[1]));
      expect(mine).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    }
    await journal.close();
  });
});

describe('projection health', () => {
  it('is ok while running and caught up, degraded once behind past healthyLagMs or stopped, failed when it gave up', async () => {
    const { MemoryMessageJournal } = await import('@cairn/actor-core');
    const journal = await MemoryMessageJournal.open();
    let release: (() => void) | undefined;
    let failing = false;
    const handle = await runProjection({
      name: 'slow',
      query: journal,
      source: { all: true },
      offsets: journal.offsetStore(),
      healthyLagMs: 50,
      maxRetries: 0,
      handler: async (e: EventEnvelope<unknown>) => {
        if (failing) throw new Error('read model gone');
        if (e.message === 'slow') await new Promise<void>((r) => (release = r));
      },
    });
    await journal.append('a', 'quick');
    await until(() => handle.metrics().eventsHandled === 1, 'the quick event');
    expect(handle.health()).toEqual({
      status: 'ok',
      checks: [
        { name: 'projection.slow.state', status: 'ok', detail: 'running (all events)' },
        expect.objectContaining({ name: 'projection.slow.lag', status: 'ok' }),
      ],
    });
    // A handler that takes longer than healthyLagMs: the event in hand ages, the projection is behind.
    await journal.append('a', 'slow');
    await until(() => release !== undefined, 'the slow event in hand');
    await new Promise((r) => setTimeout(r, 80));
    const behind = handle.health();
    expect(behind.status).toBe('degraded');
    expect(behind.checks[1]).toMatchObject({ name: 'projection.slow.lag', status: 'degraded' });
    expect(behind.checks[1]!.value).toBeGreaterThanOrEqual(0.05);
    expect(handle.metrics().behindMs).toBeGreaterThanOrEqual(50);
    release!();
    await until(() => handle.metrics().eventsHandled === 2, 'the slow event handled');
    // Caught up: the figure is how late the last event was handled, and it does not grow while quiet.
    const settled = handle.metrics().behindMs;
    await new Promise((r) => setTimeout(r, 30));
    expect(handle.metrics().behindMs).toBe(settled);
    failing = true;
    await journal.append('a', 'boom');
    await handle.done;
    expect(handle.health().status).toBe('failed');
    expect(handle.health().checks[0]).toMatchObject({
      status: 'failed',
      detail: expect.stringMatching(/handler kept failing/),
    });
    await journal.close();
  });
});

describe('runProjection with onDeletion', () => {
  it('hands a deleted id to onDeletion in the global order (a tag projection too), retried like an event; without it deletions pass by', async () => {
    const { MemoryMessageJournal } = await import('@cairn/actor-core');
    const journal = await MemoryMessageJournal.open();
    const offsets = journal.offsetStore();
    const balances = new Map<string, number>();
    const log: string[] = [];
    let failDeletionOnce = true;
    const handle = await runProjection({
      name: 'balances',
      query: journal,
      source: { tag: 'account' },
      offsets,
      backoff: fast,
      handler: (e: EventEnvelope<unknown>) => {
        balances.set(e.persistenceId, (balances.get(e.persistenceId) ?? 0) + (e.message as number));
        log.push(`${e.persistenceId}+${e.message}`);
      },
      onDeletion: (marker) => {
        if (failDeletionOnce) {
          failDeletionOnce = false;
          throw new Error('read model busy');
        }
        balances.delete(marker.persistenceId);
        log.push(`${marker.persistenceId} deleted at ${marker.sequenceNr}`);
      },
    });
    const plain: string[] = [];
    const plainHandle = await runProjection({
      name: 'plain',
      query: journal,
      source: { all: true },
      offsets,
      handler: (e: EventEnvelope<unknown>) => {
        plain.push(`${e.persistenceId}+${e.message}`);
      },
    });
    await journal.append('a', 5, { tags: ['account'] });
    await journal.append('b', 7, { tags: ['account'] });
    await journal.deletePersistenceId('a');
    await journal.append('a', 1, { tags: ['account'] });
    await until(() => log.length === 4, 'the events and the deletion');
    expect(log).toEqual(['a+5', 'b+7', 'a deleted at 2', 'a+1']);
    expect([...balances]).toEqual([
      ['b', 7],
      ['a', 1],
    ]);
    await until(() => plain.length === 3, 'the plain projection');
    expect(plain).toEqual(['a+5', 'b+7', 'a+1']);
    await handle.stop();
    await plainHandle.stop();
    await journal.close();
  });

  it('refuses an onDeletion that is not a function', async () => {
    const log = new FakeLog();
    await expect(
      runProjection({
        name: 'p',
        query: log,
        source: { all: true },
        offsets: new RecordingOffsets(),
        handler: () => undefined,
        onDeletion: 'erase' as never,
      }),
    ).rejects.toThrow(/onDeletion must be a function/);
  });
});

describe('runProjection on a store that keeps projection records', () => {
  it('refuses a second instance through another journal on the same storage, and records state for operators', async () => {
    const { MemoryJournalStore, MemoryMessageJournal } = await import('@cairn/actor-core');
    const { listProjections } = await import('@cairn/projection');
    const store = new MemoryJournalStore();
    const first = await MemoryMessageJournal.open({ store });
    const second = await MemoryMessageJournal.open({ store });
    await first.append('a', 1, { tags: ['t'] });
    const options = { name: 'p', source: { tag: 't' }, handler: () => undefined } as const;
    const handle = await runProjection({ ...options, query: first, offsets: first.offsetStore() });
    await expect(runProjection({ ...options, query: second, offsets: second.offsetStore() })).rejects.toThrow(
      /already running in another process/,
    );
    expect((await listProjections(second.offsetStore(), second))[0]).toMatchObject({
      name: 'p',
      state: 'running',
    });
    await handle.stop();
    const [info] = await listProjections(second.offsetStore(), second);
    expect(info).toMatchObject({ name: 'p', state: 'stopped', behind: 0, lagMs: 0, source: { tag: 't' } });
    const again = await runProjection({ ...options, query: second, offsets: second.offsetStore() });
    await again.stop();
    await first.close();
    await second.close();
  });
});

describe('runProjection exactly-once', () => {
  /** A store whose transactSync applies the body's writes and the offset together, or neither. */
  class TransactionalOffsets extends RecordingOffsets {
    readonly capabilities = { exactlyOnce: true as const };
    readonly model = new Map<string, number>();

    transactSync<T>(name: string, offset: string, body: () => T): T {
      const before = new Map(this.model);
      try {
        const result = body();
        if (result instanceof Promise) throw new TypeError('body returned a promise');
        this.saved.set(name, offset);
        this.history.push(offset);
        return result;
      } catch (e) {
        this.model.clear();
        for (const [k, v] of before) this.model.set(k, v);
        throw e;
      }
    }
  }

  it("saves each event's offset in the handler's transaction; a throwing handler leaves neither its writes nor the offset", async () => {
    const log = new FakeLog();
    const offsets = new TransactionalOffsets();
    fill(log, 3);
    let failOnce = true;
    const handle = await runProjection({
      name: 'p',
      query: log,
      source: { all: true },
      offsets,
      exactlyOnce: true,
      backoff: fast,
      handler: (e) => {
        offsets.model.set(e.offset, e.sequenceNr);
        if (e.sequenceNr === 2 && failOnce) {
          failOnce = false;
          throw new Error('rolled back');
        }
      },
    });
    await until(() => handle.metrics().eventsHandled === 3, 'all three');
    expect(offsets.history).toEqual(['o0', 'o1', 'o2']);
    expect([...offsets.model.keys()]).toEqual(['o0', 'o1', 'o2']);
    expect(handle.metrics()).toMatchObject({ savedOffset: 'o2', retries: 1 });
    await handle.stop();
    expect(offsets.history).toEqual(['o0', 'o1', 'o2']);
  });

  it('refuses exactlyOnce on a store without transactions, and fails on an async handler', async () => {
    const log = new FakeLog();
    fill(log, 1);
    const base = { name: 'p', query: log, source: { all: true } as const, handler: () => undefined };
    await expect(
      runProjection({ ...base, offsets: new RecordingOffsets(), exactlyOnce: true }),
    ).rejects.toThrow(/exactlyOnce needs an offset store/);
    const offsets = new TransactionalOffsets();
    const handle = await runProjection({
      ...base,
      offsets,
      exactlyOnce: true,
      maxRetries: 0,
      handler: async () => undefined,
    });
    const end = await handle.done;
    expect(end.state).toBe('failed');
    expect(offsets.saved.has('p')).toBe(false);
  });
});
