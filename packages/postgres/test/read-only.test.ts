import { canOpenReadOnly, createPersistence, ReadOnlyError, StorageError } from '@cairn/actor-core';
import { PostgresMessageJournal, PostgresSnapshotStore, provider } from '@cairn/postgres';
import { collect } from '@cairn/testkit';
import { openPgDatabase } from '../src/driver';
import { fastTestServerUrl, sql, TestSchemas } from './pg-test-env';

const schemas = new TestSchemas('ro');
afterAll(() => schemas.dropAll());

const schemaExists = async (schema: string) =>
  (await sql<{ n: string }>(`SELECT count(*)::text AS n FROM pg_namespace WHERE nspname = $1`, [schema]))[0]
    ?.n === '1';

/** Every row of the schema's tables, as text: what a read-only store must leave exactly as it was. */
async function contents(schema: string): Promise<string> {
  const tables = ['cairn_meta', 'streams', 'journal', 'snapshots', 'offsets', 'ordering_floor'];
  const parts: string[] = [];
  for (const t of tables) {
    const rows = await sql(`SELECT * FROM "${schema}".${t} ORDER BY 1, 2`);
    parts.push(`${t}: ${JSON.stringify(rows)}`);
  }
  return parts.join('\n');
}

describe('postgres opened read-only', () => {
  it('declares the readOnly capability and takes the option through the config', async () => {
    expect(provider.validateOptions!('journal', { readOnly: true })).toEqual([]);
    expect(provider.validateOptions!('snapshots', { readOnly: true })).toEqual([]);
    expect(provider.validateOptions!('journal', { readOnly: 'yes' })).toEqual([
      expect.stringMatching(/^readOnly: must be a boolean/),
    ]);
  });

  it('never creates a schema: opening one that is missing is a StorageError and the schema is still missing', async () => {
    const schema = schemas.next();
    for (const open of [
      () => PostgresMessageJournal.open({ connectionString: fastTestServerUrl(), schema, readOnly: true }),
      () => PostgresSnapshotStore.open({ connectionString: fastTestServerUrl(), schema, readOnly: true }),
    ]) {
      const error = await open().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StorageError);
      expect((error as Error).message).toMatch(/no Cairn schema .* a read-only open never creates one/);
    }
    expect(await schemaExists(schema)).toBe(false);
  });

  it('reads what a writer stored, and refuses every write with ReadOnlyError, changing no row', async () => {
    const schema = schemas.next();
    const writer = await createPersistence({
      journal: { provider: 'postgres', connectionString: fastTestServerUrl(), schema },
      snapshots: { provider: 'postgres', connectionString: fastTestServerUrl(), schema },
    });
    try {
      await writer.journal.appendBatch('a', [{ n: 1 }, { n: 2 }, { n: 3 }], { tags: ['t'] });
      await writer.snapshots.save('a', 2, { s: 2 });
      await writer.offsets!.save('proj', 'some-offset');
    } finally {
      await writer.close();
    }
    const before = await contents(schema);

    const reader = await createPersistence({
      journal: { provider: 'postgres', connectionString: fastTestServerUrl(), schema, readOnly: true },
      snapshots: { provider: 'postgres', connectionString: fastTestServerUrl(), schema, readOnly: true },
    });
    try {
      const journal = reader.journal as PostgresMessageJournal;
      expect(canOpenReadOnly(journal)).toBe(true);
      expect(canOpenReadOnly(reader.snapshots)).toBe(true);
      expect(journal.readOnly).toBe(true);
      expect((await collect(journal.readFrom('a', 1))).map((e) => e.message)).toEqual([
        { n: 1 },
        { n: 2 },
        { n: 3 },
      ]);
      expect(await journal.highestSequenceNr('a')).toBe(3);
      expect((await collect(journal.eventsByTag('t'))).length).toBe(3);
      expect((await reader.snapshots.loadLatest('a'))?.state).toEqual({ s: 2 });
      expect(await reader.offsets!.load('proj')).toBe('some-offset');

      const offsets = journal.offsetStore();
      const writes: Array<[string, () => Promise<unknown>]> = [
        ['append', () => journal.append('a', { n: 4 })],
        ['appendBatch', () => journal.appendBatch('b', [{ n: 1 }])],
        ['truncateBefore', () => journal.truncateBefore('a', 2)],
        [
          'importEntries',
          () =>
            journal.importEntries('c', [
              { persistenceId: 'c', sequenceNr: 1, timestamp: 1, message: { n: 1 } },
            ]),
        ],
        ['importTruncated', () => journal.importTruncated('d', 5)],
        ['acquireLease', () => journal.acquireLease('a')],
        ['save snapshot', () => reader.snapshots.save('a', 3, { s: 3 })],
        ['delete snapshots', () => reader.snapshots.delete('a', { maxSequenceNr: 3 })],
        ['save offset', () => offsets.save('proj', 'other')],
        ['deleteOffset', () => offsets.deleteOffset('proj')],
        ['saveStatus', () => offsets.saveStatus('proj', '{}')],
        ['lockProjection', () => offsets.lockProjection('proj')],
        ['transact', () => offsets.transact('proj', 'other', async () => undefined)],
      ];
      for (const [what, write] of writes) {
        const error = await write().then(
          () => undefined,
          (e: unknown) => e,
        );
        if (!(error instanceof ReadOnlyError)) throw new Error(`${what} was not refused: ${String(error)}`);
      }
      expect((await journal.health()).checks).toContainEqual(
        expect.objectContaining({ name: 'open', detail: 'open, read-only' }),
      );
    } finally {
      await reader.close();
    }
    expect(await contents(schema)).toBe(before);
  });

  it('behind the stores, the server refuses writes on every connection of a read-only pool', async () => {
    const schema = schemas.next();
    await sql(`CREATE SCHEMA "${schema}"; CREATE TABLE "${schema}".t (n int)`);
    const db = openPgDatabase({
      connectionString: fastTestServerUrl(),
      poolSize: 2,
      statementTimeoutMs: 0,
      applicationName: 'cairn test (read-only)',
      readOnly: true,
    });
    try {
      // Both pool connections, a transaction, and a dedicated connection: each refuses (SQLSTATE 25006).
      const attempts = [
        () => db.query(`INSERT INTO "${schema}".t VALUES (1)`),
        () => db.query(`INSERT INTO "${schema}".t VALUES (2)`),
        () => db.transaction((tx) => tx.query(`INSERT INTO "${schema}".t VALUES (3)`)),
        async () => {
          const own = await db.dedicated('cairn test dedicated');
          try {
            return await own.query(`INSERT INTO "${schema}".t VALUES (4)`);
          } finally {
            await own.close();
          }
        },
      ];
      const results = await Promise.allSettled(attempts.map((a) => a()));
      for (const r of results) {
        expect(r).toMatchObject({ status: 'rejected', reason: { code: '25006' } });
      }
      expect(await db.query<{ n: number }>(`SELECT n FROM "${schema}".t`)).toEqual([]);
    } finally {
      await db.close();
    }
  });

  it('an older layout version is not brought up to date read-only: ReadOnlyError, nothing changed', async () => {
    const schema = schemas.next();
    await (await PostgresMessageJournal.open({ connectionString: fastTestServerUrl(), schema })).close();
    await sql(`UPDATE "${schema}".cairn_meta SET value = '1' WHERE key = 'schema_version'`);
    const before = await contents(schema);
    await expect(
      PostgresMessageJournal.open({ connectionString: fastTestServerUrl(), schema, readOnly: true }),
    ).rejects.toThrow(ReadOnlyError);
    await expect(
      PostgresSnapshotStore.open({ connectionString: fastTestServerUrl(), schema, readOnly: true }),
    ).rejects.toThrow(/layout version 1, which a writable open brings up to/);
    expect(await contents(schema)).toBe(before);
  });
});
