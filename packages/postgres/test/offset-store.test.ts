import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { canTransactAsync, createPersistence, keepsProjectionRecords } from '@cairn/actor-core';
import { PostgresMessageJournal, PostgresOffsetStore, type PostgresTransaction } from '@cairn/postgres';
import { listProjections, runProjection } from '@cairn/projection';
import { sql, TestSchemas, testServerUrl } from './pg-test-env';

const CHILD = path.join(__dirname, 'fixtures', 'offsets-child.js');
const schemas = new TestSchemas('offs');
afterAll(() => schemas.dropAll());

const open = (schema: string) =>
  PostgresMessageJournal.open<unknown>({ connectionString: testServerUrl(), schema });

async function until(condition: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A child process of fixtures/offsets-child.js with its stdout lines. */
function child(schema: string, mode: 'lock' | 'transact') {
  const process_: ChildProcess = spawn(process.execPath, [CHILD, testServerUrl(), schema, mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  let buffered = '';
  process_.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
  });
  const exited = new Promise<string | null>((resolve) =>
    process_.on('exit', (_code, signal) => resolve(signal)),
  );
  return { process: process_, lines, exited };
}

describe('PostgresOffsetStore', () => {
  it('saves, replaces and loads offsets by name, across reopen; bad input saves nothing; closed with its journal', async () => {
    const schema = schemas.next();
    let journal = await open(schema);
    const first = journal.offsetStore();
    try {
      const offsets = first;
      expect(journal.offsetStore()).toBe(offsets);
      expect(await offsets.load('p')).toBeUndefined();
      await offsets.save('p', 'one');
      await offsets.save('p', 'two');
      await offsets.save('q', 'three');
      await expect(offsets.save('', 'x')).rejects.toThrow(TypeError);
      await expect(offsets.save('p', 42 as unknown as string)).rejects.toThrow(TypeError);
      await journal.close();
      await expect(first.load('p')).rejects.toThrow(/closed/);
      journal = await open(schema);
      expect(await journal.offsetStore().load('p')).toBe('two');
      expect(await journal.offsetStore().load('q')).toBe('three');
    } finally {
      await journal.close();
    }
    const closed = journal;
    expect(() => closed.offsetStore()).toThrow(/closed/);
  });

  it("createPersistence(...).offsets is the journal schema's store, with records and transactions", async () => {
    const schema = schemas.next();
    const persistence = await createPersistence({
      journal: { provider: 'postgres', connectionString: testServerUrl(), schema },
      snapshots: { provider: 'postgres', connectionString: testServerUrl(), schema },
    });
    try {
      const offsets = persistence.offsets!;
      expect(offsets).toBeInstanceOf(PostgresOffsetStore);
      expect(keepsProjectionRecords(offsets)).toBe(true);
      expect(canTransactAsync(offsets)).toBe(true);
      await offsets.save('p', 'x');
      const [row] = await sql<{ offset_value: string }>(`SELECT offset_value FROM "${schema}".offsets`);
      expect(row?.offset_value).toBe('x');
    } finally {
      await persistence.close();
    }
  });

  it('statuses beside offsets; names; deleteOffset keeps the status', async () => {
    const journal = await open(schemas.next());
    try {
      const offsets = journal.offsetStore();
      await offsets.saveStatus('b', '{"state":"running"}');
      await offsets.save('a', 'o1');
      expect(await offsets.names()).toEqual(['a', 'b']);
      expect(await offsets.loadStatus('b')).toBe('{"state":"running"}');
      expect(await offsets.load('b')).toBeUndefined();
      await offsets.saveStatus('a', 's');
      await offsets.deleteOffset('a');
      expect(await offsets.load('a')).toBeUndefined();
      expect(await offsets.loadStatus('a')).toBe('s');
      expect(await offsets.names()).toEqual(['a', 'b']);
    } finally {
      await journal.close();
    }
  });

  it('transact commits the read model and the offset together; a body that throws leaves neither', async () => {
    const schema = schemas.next();
    const journal = await open(schema);
    try {
      await sql(`CREATE TABLE "${schema}".model (k text PRIMARY KEY, v int)`);
      const offsets = journal.offsetStore();
      const result = await offsets.transact('p', 'o1', async (tx: PostgresTransaction) => {
        await tx.query(`INSERT INTO "${schema}".model VALUES ('a', 1)`);
        // The transaction sees its own write.
        const [row] = await tx.query<{ v: number }>(`SELECT v FROM "${schema}".model WHERE k = 'a'`);
        return row!.v;
      });
      expect(result).toBe(1);
      expect(await offsets.load('p')).toBe('o1');
      const failure = new Error('after the write');
      await expect(
        offsets.transact('p', 'o2', async (tx: PostgresTransaction) => {
          await tx.query(`UPDATE "${schema}".model SET v = 2`);
          throw failure;
        }),
      ).rejects.toBe(failure);
      expect(await offsets.load('p')).toBe('o1');
      expect(await sql(`SELECT k, v FROM "${schema}".model`)).toEqual([{ k: 'a', v: 1 }]);
      // An SQL error in the body is the body's error, also rolled back.
      await expect(
        offsets.transact('p', 'o3', (tx: PostgresTransaction) => tx.query('SELECT nope')),
      ).rejects.toThrow(/nope/);
      expect(await offsets.load('p')).toBe('o1');
    } finally {
      await journal.close();
    }
  });

  it('locks: one holder at a time, named; released by release(), close, or the holder dying', async () => {
    const schema = schemas.next();
    const a = await open(schema);
    const b = await open(schema);
    try {
      const lock = await a.offsetStore().lockProjection('p');
      expect(await b.offsetStore().projectionLocked('p')).toBe(true);
      await expect(b.offsetStore().lockProjection('p')).rejects.toMatchObject({
        code: 'ERR_JOURNAL_LOCKED',
        holder: { pid: process.pid },
      });
      expect(await b.offsetStore().projectionLocked('other')).toBe(false);
      await lock.release();
      await lock.release();
      expect(await b.offsetStore().projectionLocked('p')).toBe(false);
      await b.offsetStore().lockProjection('p');
      await b.close();
      await a
        .offsetStore()
        .lockProjection('p')
        .then((l) => l.release());

      // A holder killed with SIGKILL: its connection ends, the server releases the lock.
      const holder = child(schema, 'lock');
      await until(() => holder.lines.some((l) => l.startsWith('locked')), 'the child locked');
      await expect(a.offsetStore().lockProjection('p')).rejects.toMatchObject({
        holder: { pid: holder.process.pid },
      });
      holder.process.kill('SIGKILL');
      expect(await holder.exited).toBe('SIGKILL');
      const deadline = Date.now() + 10_000;
      while (await a.offsetStore().projectionLocked('p')) {
        if (Date.now() > deadline) throw new Error('the lock of the killed process stayed');
        await new Promise((r) => setTimeout(r, 50));
      }
      await (await a.offsetStore().lockProjection('p')).release();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('exactly-once across SIGKILL: the read model and the offset saved with it are both there or both not', async () => {
    const schema = schemas.next();
    const journal = await open(schema);
    try {
      await sql(`CREATE TABLE "${schema}".counters (count int NOT NULL)`);
      await sql(`INSERT INTO "${schema}".counters VALUES (0)`);
      for (let round = 0; round < 3; round++) {
        const writer = child(schema, 'transact');
        const target = 10 + Math.floor(Math.random() * 40);
        await until(() => writer.lines.filter((l) => l.startsWith('ack')).length >= target, 'acks');
        await new Promise((r) => setTimeout(r, Math.random() * 20));
        writer.process.kill('SIGKILL');
        expect(await writer.exited).toBe('SIGKILL');
        const acked = Math.max(
          ...writer.lines.filter((l) => l.startsWith('ack')).map((l) => Number(l.split(' ')[1])),
        );
        // One statement, one snapshot: the child's last COMMIT may still be finishing on the server after
        // the kill, so two separate reads could see the offset without the model (or the reverse).
        const [row] = await sql<{ count: number; offset_value: string }>(
          `SELECT c.count, o.offset_value FROM "${schema}".counters c, "${schema}".offsets o WHERE o.projection = 'p'`,
        );
        expect(String(row!.count)).toBe(row!.offset_value);
        expect(row!.count).toBeGreaterThanOrEqual(acked);
        expect(row!.count).toBeLessThanOrEqual(acked + 1);
      }
    } finally {
      await journal.close();
    }
  });
});

describe('runProjection on the postgres provider', () => {
  it('exactly-once: the handler writes through context.transaction; a failure after the write is not counted twice', async () => {
    const schema = schemas.next();
    const journal = await open(schema);
    try {
      await sql(`CREATE TABLE "${schema}".balances (id text PRIMARY KEY, amount int NOT NULL)`);
      for (let i = 1; i <= 5; i++) await journal.append(`acct-${i % 2}`, { amount: i }, { tags: ['bank'] });
      const offsets = journal.offsetStore();
      let failures = 1;
      const handle = await runProjection<unknown, { amount: number }>({
        name: 'balances',
        query: journal,
        source: { tag: 'bank' },
        offsets,
        exactlyOnce: true,
        backoff: { minBackoffMs: 1, maxBackoffMs: 1, jitter: 0 },
        handler: async (e, { transaction }) => {
          const tx = transaction as PostgresTransaction;
          await tx.query(
            `INSERT INTO "${schema}".balances VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET amount = balances.amount + EXCLUDED.amount`,
            [e.persistenceId, e.message.amount],
          );
          // Thrown after the write: the transaction rolls it back, so the retry does not count it twice.
          if (e.sequenceNr === 2 && failures-- > 0) throw new Error('after the write');
        },
      });
      await until(() => handle.metrics().eventsHandled === 5, 'five events');
      const rows = await sql<{ id: string; amount: number }>(
        `SELECT id, amount FROM "${schema}".balances ORDER BY id`,
      );
      expect(rows).toEqual([
        { id: 'acct-0', amount: 2 + 4 },
        { id: 'acct-1', amount: 1 + 3 + 5 },
      ]);
      expect(await offsets.load('balances')).toBe(handle.metrics().lastOffset);
      expect(handle.metrics().retries).toBe(1);
      // One instance per name, across processes: a second run is refused while this one runs.
      const other = await open(schema);
      try {
        await expect(
          runProjection({
            name: 'balances',
            query: other,
            source: { all: true },
            offsets: other.offsetStore(),
            handler: () => undefined,
          }),
        ).rejects.toMatchObject({ code: 'ERR_PROJECTION_RUNNING' });
      } finally {
        await other.close();
      }
      await handle.stop();
      const [info] = await listProjections(offsets, journal);
      expect(info).toMatchObject({ name: 'balances', state: 'stopped', behind: 0 });
    } finally {
      await journal.close();
    }
  });
});
