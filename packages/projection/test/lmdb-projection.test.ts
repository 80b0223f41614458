import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { LmdbMessageJournal } from '@cairn/journal-lmdb';
import { listProjections, runProjection } from '@cairn/projection';

async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('runProjection on the LMDB provider', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cairn-projection-lmdb-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('exactly-once: the read model written in the handler and the offset commit in one transaction, or neither', async () => {
    const journal = await LmdbMessageJournal.open({ path: dir, noSync: true });
    try {
      const offsets = journal.offsetStore();
      const balances = offsets.readModel<string, number>('balances');
      for (let i = 1; i <= 5; i++) await journal.append(`acct-${i % 2}`, { amount: i }, { tags: ['bank'] });
      let failures = 1;
      const handle = await runProjection<unknown, { amount: number }>({
        name: 'balances',
        query: journal,
        source: { tag: 'bank' },
        offsets,
        exactlyOnce: true,
        backoff: { minBackoffMs: 1, maxBackoffMs: 1, jitter: 0 },
        handler: (e) => {
          balances.putSync(e.persistenceId, (balances.get(e.persistenceId) ?? 0) + e.message.amount);
          // Thrown after the write: the transaction rolls it back, so the retry does not count it twice.
          if (e.sequenceNr === 2 && failures-- > 0) throw new Error('after the write');
        },
      });
      await until(() => handle.metrics().eventsHandled === 5, 'five events');
      expect(balances.get('acct-1')).toBe(1 + 3 + 5);
      expect(balances.get('acct-0')).toBe(2 + 4);
      expect(await offsets.load('balances')).toBe(handle.metrics().lastOffset);
      expect(handle.metrics().retries).toBe(1);
      await handle.stop();
      const [info] = await listProjections(offsets, journal);
      expect(info).toMatchObject({ name: 'balances', state: 'stopped', behind: 0 });
    } finally {
      await journal.close();
    }
  });

  it('one instance per name: a second runProjection on the same environment is refused while the first runs', async () => {
    const first = await LmdbMessageJournal.open({ path: dir, noSync: true });
    try {
      await first.append('a', 1);
      const options = { name: 'p', source: { all: true } as const, handler: () => undefined };
      const handle = await runProjection({ ...options, query: first, offsets: first.offsetStore() });
      const again = runProjection({ ...options, query: first, offsets: first.offsetStore() });
      await expect(again).rejects.toMatchObject({ code: 'ERR_PROJECTION_RUNNING' });
      await handle.stop();
    } finally {
      await first.close();
    }
  });
});
