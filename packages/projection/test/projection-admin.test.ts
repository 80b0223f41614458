import {
  listProjections,
  ProjectionRunningError,
  resetProjection,
  runProjection,
  skipProjection,
} from '@cairn/projection';
import { FakeLog, RecordsOffsets } from './fake-query';

const fast = { minBackoffMs: 1, maxBackoffMs: 1, jitter: 0 };

describe('projection records and operator actions', () => {
  it('records running, stopped and failed states with the source; lists offset, state and how far behind', async () => {
    const log = new FakeLog();
    const offsets = new RecordsOffsets();
    for (let i = 1; i <= 4; i++) log.append('a', i, ['t']);
    log.append('b', 0);
    const handle = await runProjection({
      name: 'p',
      query: log,
      source: { tag: 't' },
      offsets,
      maxRetries: 0,
      backoff: fast,
      handler: (e) => {
        if (e.sequenceNr === 3) throw new Error('poison');
      },
    });
    expect(offsets.locks.has('p')).toBe(true);
    let [info] = await listProjections(offsets, log);
    const end = await handle.done;
    expect(end.state).toBe('failed');
    expect(offsets.locks.has('p')).toBe(false);
    [info] = await listProjections(offsets, log);
    expect(info).toMatchObject({
      name: 'p',
      offset: 'o1',
      state: 'failed',
      source: { tag: 't' },
      behind: 2,
    });
    expect(info?.note).toContain('a #3');
    expect(info?.note).toContain('poison');

    // skip the poison event: the offset moves past exactly that one, and the skip is recorded
    const skipped = await skipProjection(offsets, log, 'p');
    expect(skipped).toMatchObject({ persistenceId: 'a', sequenceNr: 3, offset: 'o2' });
    expect(offsets.saved.get('p')).toBe('o2');
    [info] = await listProjections(offsets, log);
    expect(info).toMatchObject({ state: 'stopped', behind: 1, note: undefined });
    expect(info?.status?.skipped?.map((s) => s.sequenceNr)).toEqual([3]);

    // reset to the start, then to a given offset
    await resetProjection(offsets, log, 'p');
    expect(offsets.saved.has('p')).toBe(false);
    [info] = await listProjections(offsets, log);
    expect(info?.behind).toBe(4);
    await resetProjection(offsets, log, 'p', 'o0');
    expect(offsets.saved.get('p')).toBe('o0');
    await expect(resetProjection(offsets, log, 'p', 'garbage')).rejects.toBeInstanceOf(TypeError);
    expect(offsets.saved.get('p')).toBe('o0');
  });

  it('refuses to reset or skip a running projection, and a second instance while the lock is held elsewhere', async () => {
    const log = new FakeLog();
    const offsets = new RecordsOffsets();
    log.append('a', 1);
    const handle = await runProjection({
      name: 'p',
      query: log,
      source: { all: true },
      offsets,
      handler: () => undefined,
    });
    expect((await listProjections(offsets, log))[0]?.state).toBe('running');
    await expect(resetProjection(offsets, log, 'p')).rejects.toBeInstanceOf(ProjectionRunningError);
    await expect(skipProjection(offsets, log, 'p')).rejects.toBeInstanceOf(ProjectionRunningError);
    await handle.stop();
    // a lock held by another process (simulated): the store refuses, runProjection says who
    offsets.locks.add('p');
    await expect(
      runProjection({ name: 'p', query: log, source: { all: true }, offsets, handler: () => undefined }),
    ).rejects.toThrow(/already running in another process/);
    offsets.locks.delete('p');
  });

  it('reports a projection whose process died while running as stopped, not running', async () => {
    const log = new FakeLog();
    const offsets = new RecordsOffsets();
    offsets.statuses.set(
      'p',
      JSON.stringify({ state: 'running', source: { all: true }, updatedAt: 1, pid: 4242 }),
    );
    await offsets.save('p', 'o0');
    log.append('a', 1);
    log.append('a', 2);
    const [info] = await listProjections(offsets, log);
    expect(info).toMatchObject({ state: 'stopped', behind: 1 });
    expect(info?.note).toContain('pid 4242');
  });
});
