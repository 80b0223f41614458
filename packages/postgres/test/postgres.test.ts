import {
  createPersistence,
  JournalCorruptedError,
  type PersistenceReport,
  SequenceConflictError,
  StorageError,
} from '@cairn/actor-core';
import { PostgresMessageJournal, PostgresSnapshotStore, provider, SCHEMA_VERSION } from '@cairn/postgres';
import { captureResources, collect, expectNoLeakedResources } from '@cairn/testkit';
import { fastTestServerUrl, sql, TestSchemas, testServerUrl } from './pg-test-env';

const schemas = new TestSchemas('pg');
afterAll(() => schemas.dropAll());

const open = <M = unknown>(schema: string, url = fastTestServerUrl()) =>
  PostgresMessageJournal.open<M>({ connectionString: url, schema });

describe('provider and config', () => {
  it('createPersistence opens a postgres journal and snapshot store by name', async () => {
    const schema = schemas.next();
    const persistence = await createPersistence({
      journal: { provider: 'postgres', connectionString: fastTestServerUrl(), schema },
      snapshots: { provider: 'postgres', connectionString: fastTestServerUrl(), schema },
    });
    try {
      expect(provider.name).toBe('postgres');
      expect(persistence.journal).toBeInstanceOf(PostgresMessageJournal);
      expect(persistence.snapshots).toBeInstanceOf(PostgresSnapshotStore);
      expect(await persistence.journal.append('cfg', { n: 1 })).toBe(1);
      await persistence.snapshots.save('cfg', 1, { s: 1 });
      expect((await persistence.snapshots.loadLatest('cfg'))?.state).toEqual({ s: 1 });
    } finally {
      await persistence.close();
    }
    const [row] = await sql<{ n: string }>(`SELECT count(*)::text AS n FROM "${schema}".journal`);
    expect(row?.n).toBe('1');
  });

  it('a config with unknown or mistyped postgres options is one ConfigError listing them', async () => {
    await expect(
      createPersistence({
        journal: { provider: 'postgres', connectionString: 7, shema: 'x' },
        snapshots: { provider: 'postgres', schema: 'Not-An-Identifier' },
      }),
    ).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: expect.stringMatching(/connectionString[\s\S]*shema[\s\S]*schema/),
    });
  });

  it('without connectionString the PG* variables say where to connect', async () => {
    const url = new URL(testServerUrl());
    const saved = { ...process.env };
    Object.assign(process.env, {
      PGHOST: url.hostname,
      PGPORT: url.port,
      PGUSER: decodeURIComponent(url.username),
      PGDATABASE: url.pathname.slice(1),
    });
    if (url.password) process.env.PGPASSWORD = decodeURIComponent(url.password);
    try {
      const journal = await PostgresMessageJournal.open({ schema: schemas.next() });
      expect(await journal.append('env', 'x')).toBe(1);
      await journal.close();
    } finally {
      for (const key of ['PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE', 'PGPASSWORD']) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }
  });

  it('bad options are a TypeError or RangeError and open nothing', async () => {
    await expect(PostgresMessageJournal.open({ schema: 'Robert"); DROP' })).rejects.toThrow(TypeError);
    await expect(PostgresMessageJournal.open({ poolSize: 0 })).rejects.toThrow(RangeError);
    await expect(PostgresSnapshotStore.open({ connectionString: '' })).rejects.toThrow(TypeError);
  });
});

describe('schema', () => {
  it('is created on first open, and a newer layout version is refused with nothing changed', async () => {
    const schema = schemas.next();
    const journal = await open(schema);
    await journal.append('v', 1);
    await journal.close();
    const [version] = await sql<{ value: string }>(
      `SELECT value FROM "${schema}".cairn_meta WHERE key = 'schema_version'`,
    );
    expect(version?.value).toBe(String(SCHEMA_VERSION));
    await sql(`UPDATE "${schema}".cairn_meta SET value = '99' WHERE key = 'schema_version'`);
    const refused = await open(schema).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StorageError);
    expect((refused as Error).message).toMatch(/version 99, newer than this @cairn\/postgres understands/);
    const [rows] = await sql<{ n: string }>(`SELECT count(*)::text AS n FROM "${schema}".journal`);
    expect(rows?.n).toBe('1');
  });

  it('processes opening a fresh database at once all succeed (serialized by an advisory lock)', async () => {
    const schema = schemas.next();
    const journals = await Promise.all(Array.from({ length: 6 }, () => open<number>(schema)));
    const stores = await Promise.all(
      Array.from({ length: 2 }, () =>
        PostgresSnapshotStore.open({ connectionString: fastTestServerUrl(), schema }),
      ),
    );
    await Promise.all(journals.map((j, i) => j.append(`id-${i}`, i)));
    await Promise.all([...journals, ...stores].map((x) => x.close()));
  });
});

describe('several writers on one store', () => {
  it('two journals appending with the same expectedSequenceNr: exactly one wins, the other gets expected and actual', async () => {
    const schema = schemas.next();
    const [a, b] = await Promise.all([open<string>(schema), open<string>(schema)]);
    try {
      await a.append('acct', 'first');
      for (let round = 1; round <= 5; round++) {
        const outcomes = await Promise.allSettled([
          a.append('acct', `a${round}`, { expectedSequenceNr: round }),
          b.append('acct', `b${round}`, { expectedSequenceNr: round }),
        ]);
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        expect(lost[0]!.reason).toBeInstanceOf(SequenceConflictError);
        expect(lost[0]!.reason).toMatchObject({ expectedSequenceNr: round, actualSequenceNr: round + 1 });
      }
      expect(await b.highestSequenceNr('acct')).toBe(6);
      expect((await collect(a.readFrom('acct', 1))).map((e) => e.sequenceNr)).toEqual([1, 2, 3, 4, 5, 6]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('appends without an expectation from two journals never conflict and leave no gap or duplicate', async () => {
    const schema = schemas.next();
    const [a, b] = await Promise.all([open<string>(schema), open<string>(schema)]);
    try {
      const appends = [];
      for (let i = 0; i < 60; i++) {
        appends.push(a.append('shared', `a${i}`), b.append('shared', `b${i}`));
        if (i % 3 === 0) appends.push(b.appendBatch('shared', [`bb${i}`, `bb${i}+1`]));
      }
      const numbers = (await Promise.all(appends)).flatMap((n) => (Array.isArray(n) ? n : [n]));
      expect(new Set(numbers).size).toBe(numbers.length);
      const read = await collect(a.readFrom('shared', 1));
      expect(read.map((e) => e.sequenceNr)).toEqual(read.map((_, i) => i + 1));
      expect(read).toHaveLength(numbers.length);
      expect(await a.highestSequenceNr('shared')).toBe(numbers.length);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('one id conflicting fails only that id: the other ids of the same commit are stored', async () => {
    const schema = schemas.next();
    const [a, b] = await Promise.all([open<string>(schema), open<string>(schema)]);
    try {
      await a.append('x', 'x1');
      await b.append('x', 'x2'); // a still believes x is at 1
      const outcomes = await Promise.allSettled([
        a.append('x', 'stale', { expectedSequenceNr: 1 }),
        a.append('y', 'y1'),
        a.append('z', 'z1', { expectedSequenceNr: 0 }),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
      expect(await b.highestSequenceNr('y')).toBe(1);
      expect(await b.highestSequenceNr('z')).toBe(1);
      expect(await b.highestSequenceNr('x')).toBe(2);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a stale writer after truncateBefore conflicts: the streams row keeps the highest', async () => {
    const schema = schemas.next();
    const [a, b] = await Promise.all([open<string>(schema), open<string>(schema)]);
    try {
      await a.appendBatch('t', ['1', '2', '3']);
      await b.truncateBefore('t', Number.MAX_SAFE_INTEGER);
      expect(await b.highestSequenceNr('t')).toBe(3);
      await b.append('t', '4');
      await expect(a.append('t', 'stale', { expectedSequenceNr: 3 })).rejects.toMatchObject({
        code: 'ERR_SEQUENCE_CONFLICT',
        actualSequenceNr: 4,
      });
      expect(await a.append('t', '5')).toBe(5);
      expect((await collect(a.readFrom('t', 1))).map((e) => e.message)).toEqual(['4', '5']);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('corruption', () => {
  it("an event row altered behind Cairn's back rejects the read naming table, id and sequenceNr", async () => {
    const schema = schemas.next();
    const journal = await open<string>(schema);
    try {
      await journal.appendBatch('c', ['one', 'two', 'three']);
      await sql(`UPDATE "${schema}".journal SET payload = payload || '\\x00'::bytea WHERE seq_nr = 2`);
      const error = await collect(journal.readFrom('c', 1)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(JournalCorruptedError);
      expect(error).toMatchObject({ persistenceId: 'c', sequenceNr: 2 });
      expect((error as JournalCorruptedError).key).toContain(`"${schema}".journal`);
      expect((error as Error).message).toMatch(/"c" sequenceNr 2/);
    } finally {
      await journal.close();
    }
  });

  it('an event moved to another sequenceNr fails its check too', async () => {
    const schema = schemas.next();
    const journal = await open<string>(schema);
    try {
      await journal.appendBatch('m', ['one', 'two']);
      await sql(`DELETE FROM "${schema}".journal WHERE seq_nr = 2`);
      await sql(`UPDATE "${schema}".journal SET seq_nr = 2 WHERE seq_nr = 1`);
      await expect(collect(journal.readFrom('m', 1))).rejects.toMatchObject({
        code: 'ERR_JOURNAL_CORRUPTED',
        sequenceNr: 2,
      });
    } finally {
      await journal.close();
    }
  });

  it('a snapshot row altered is reported and skipped for an older one, never deleted', async () => {
    const schema = schemas.next();
    const reports: PersistenceReport[] = [];
    const store = await PostgresSnapshotStore.open<string>({
      connectionString: fastTestServerUrl(),
      schema,
      reporter: (r) => reports.push(r),
    });
    try {
      await store.save('s', 5, 'five');
      await store.save('s', 10, 'ten');
      await sql(`UPDATE "${schema}".snapshots SET written_at = written_at + 1 WHERE seq_nr = 10`);
      expect((await store.loadLatest('s'))?.state).toBe('five');
      expect(reports).toHaveLength(1);
      expect(reports[0]!.message).toContain(`"${schema}".snapshots (s, 10)`);
      const [row] = await sql<{ n: string }>(`SELECT count(*)::text AS n FROM "${schema}".snapshots`);
      expect(row?.n).toBe('2');
    } finally {
      await store.close();
    }
  });
});

describe('secrets and failures', () => {
  it('a password never appears in an error message', async () => {
    const url = new URL(testServerUrl());
    const secret = 'Sup3r-s3cret-pw';
    // A server that is not there, and a database that is not there.
    const unreachable = `postgres://someone:${secret}@127.0.0.1:1/app`;
    url.username = 'postgres';
    url.password = secret;
    url.pathname = '/no_such_database';
    for (const connectionString of [unreachable, url.toString()]) {
      const error = await PostgresMessageJournal.open({ connectionString, schema: 'x' }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StorageError);
      const text = `${(error as Error).message} ${String((error as Error).stack)}`;
      expect(text).not.toContain(secret);
      expect((error as Error).message).toMatch(/postgres:\/\/(someone|postgres)@127\.0\.0\.1/);
    }
  });

  it('a connection lost while an append commits rejects it with StorageError "outcome unknown"; recovery reads what committed', async () => {
    const schema = schemas.next();
    const journal = await open<string>(schema, testServerUrl());
    const blocker = await sqlSession();
    try {
      await journal.append('u', 'one');
      // Hold the id's stream row so the next append's statement waits inside the server...
      await blocker.query('BEGIN');
      await blocker.query(`SELECT * FROM "${schema}".streams WHERE persistence_id = 'u' FOR UPDATE`);
      const pending = journal.append('u', 'two').catch((e: unknown) => e);
      const waiting = await waitFor(async () => {
        const rows = await sql<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%unnest%' AND pid <> pg_backend_pid()`,
        );
        return rows[0]?.pid;
      });
      // ...then cut its connection, as a network failure or a server crash would.
      await sql('SELECT pg_terminate_backend($1)', [waiting]);
      const error = await pending;
      expect(error).toBeInstanceOf(StorageError);
      expect((error as Error).message).toMatch(/outcome unknown/);
      await blocker.query('ROLLBACK');
      // The pool recovers; the journal reads the truth from the database.
      expect(await journal.highestSequenceNr('u')).toBe(1);
      expect(await journal.append('u', 'three')).toBe(2);
    } finally {
      await blocker.end();
      await journal.close();
    }
  });

  it('open/write/close cycles leave no socket, handle or timer behind', async () => {
    const schema = schemas.next();
    const warm = await open<number>(schema);
    await warm.append('warm', 0);
    await warm.close();
    const before = captureResources();
    for (let i = 0; i < 20; i++) {
      const journal = await open<number>(schema);
      const store = await PostgresSnapshotStore.open<number>({
        connectionString: fastTestServerUrl(),
        schema,
      });
      await journal.append('cycle', i);
      await store.save('cycle', i + 1, i);
      await collect(journal.readFrom('cycle', 1, { max: 2 }));
      await store.loadLatest('cycle');
      await Promise.all([journal.close(), store.close()]);
    }
    await expectNoLeakedResources(before);
  });
});

async function sqlSession() {
  const pg = await import('pg');
  const client = new pg.default.Client({ connectionString: testServerUrl() });
  await client.connect();
  return client;
}

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('tags', () => {
  it('are stored with each event, read back, and covered by the row checksum', async () => {
    const schema = schemas.next();
    const journal = await open<string>(schema);
    try {
      await journal.appendBatch('tagged', ['a', 'b', 'c'], {
        tags: (m) => (m === 'b' ? [] : [`t-${m}`, 'all']),
      });
      expect((await collect(journal.readFrom('tagged', 1))).map((e) => e.tags)).toEqual([
        ['t-a', 'all'],
        [],
        ['t-c', 'all'],
      ]);
      await sql(`UPDATE "${schema}".journal SET tags = '{forged}' WHERE seq_nr = 3`);
      await expect(collect(journal.readFrom('tagged', 1))).rejects.toMatchObject({
        code: 'ERR_JOURNAL_CORRUPTED',
        sequenceNr: 3,
      });
    } finally {
      await journal.close();
    }
  });
});
