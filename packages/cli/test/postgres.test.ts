import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import {
  canQuery,
  createPersistence,
  type EventEnvelope,
  type MessageJournal,
  type Persistence,
  type SnapshotStore,
} from '@cairn/actor-core';
import { runProjection } from '@cairn/projection';
import { collect } from '@cairn/testkit';
import { sql, TestSchemas, testServerUrl } from '../../postgres/test/pg-test-env';
import { type CliRun, cli, eventOf, layout, makeData, openData, stateOf, tempDir } from './cli-fixtures';

/**
 * `cairn` on the postgres provider, against the test run's server (a schema per case). The connection
 * string carries a password (the test server trusts local connections, so any password works; a server
 * that checks one gave its own in CAIRN_TEST_PG_URL): no output may contain it.
 */
const schemas = new TestSchemas('cli');
afterAll(() => schemas.dropAll());

const url = new URL(testServerUrl());
if (!url.password) url.password = 'Cairn-Secret-Pw-4711';
const PASSWORD = decodeURIComponent(url.password);
const connectionString = url.toString();

let root: { dir: string; remove: () => Promise<void> };
beforeAll(async () => {
  root = await tempDir();
});
afterAll(() => root.remove());

/** Every output of the file's CLI runs, checked for the password at the end. */
const outputs: string[] = [];
async function run(...argv: string[]): Promise<CliRun> {
  const result = await cli(...argv);
  outputs.push(result.stdout, result.stderr);
  return result;
}
afterAll(() => {
  for (const text of outputs) expect(text).not.toContain(PASSWORD);
});

/** A cairn.config.json naming `schema` on the test server; `pg` extra options for both halves. */
async function configFor(
  schema: string,
  pg: Record<string, unknown> = { connectionString },
): Promise<string> {
  const file = path.join(root.dir, `${schema}.config.json`);
  await writeFile(
    file,
    JSON.stringify({
      journal: { provider: 'postgres', schema, ...pg },
      snapshots: { provider: 'postgres', schema, ...pg },
    }),
  );
  return file;
}

async function openPg(schema: string): Promise<Persistence> {
  return createPersistence({
    journal: { provider: 'postgres', connectionString, schema },
    snapshots: { provider: 'postgres', connectionString, schema },
  });
}

/**
 * The standard data set on postgres: "acct-a" 30 events in batches of 3 tagged "a" and "batch", snapshots
 * at 10 and 20; "acct-b" 12 events, a snapshot at 12; "acct-c" 20 events truncated below 6, a snapshot at 5.
 */
async function makePgData(schema: string): Promise<void> {
  const p = await openPg(schema);
  try {
    for (let seq = 1; seq <= 30; seq += 3) {
      await p.journal.appendBatch(
        'acct-a',
        [seq, seq + 1, seq + 2].map((s) => eventOf('acct-a', s)),
        { tags: ['a', 'batch'] },
      );
    }
    await p.snapshots.save('acct-a', 10, stateOf('acct-a', 10));
    await p.snapshots.save('acct-a', 20, stateOf('acct-a', 20));
    for (let seq = 1; seq <= 12; seq++) await p.journal.append('acct-b', eventOf('acct-b', seq));
    await p.snapshots.save('acct-b', 12, stateOf('acct-b', 12));
    for (let seq = 1; seq <= 20; seq++) await p.journal.append('acct-c', eventOf('acct-c', seq));
    await p.snapshots.save('acct-c', 5, stateOf('acct-c', 5));
    await p.journal.truncateBefore('acct-c', 6);
  } finally {
    await p.close();
  }
}

const schemaExists = async (schema: string) =>
  (await sql<{ n: string }>(`SELECT count(*)::text AS n FROM pg_namespace WHERE nspname = $1`, [schema]))[0]
    ?.n === '1';

describe('cairn on postgres', () => {
  const store = { schema: '', config: '' };
  beforeAll(async () => {
    store.schema = schemas.next();
    await makePgData(store.schema);
    store.config = await configFor(store.schema);
  });

  it('verify reads every event and snapshot, naming the server and schema it checked without the password', async () => {
    const r = await run('verify', '--config', store.config);
    expect(r.stderr).toBe('');
    const where = `postgres postgres://${decodeURIComponent(url.username)}@${url.host}${url.pathname} schema "${store.schema}"`;
    expect(r.stdout).toBe(
      [
        `journal: ${where}`,
        `snapshots: ${where}`,
        '3 id(s), 57 event(s) read, 4 snapshot(s) verified',
        'OK: no problems found',
        '',
      ].join('\n'),
    );
    expect(r.code).toBe(0);
    const one = await run('verify', 'acct-b', 'nope', '--config', store.config);
    expect(one.stderr).toContain('not found: no id "nope"');
    expect(one.code).toBe(2);
  });

  it('ls lists ids with highest, first surviving, count and snapshots', async () => {
    const r = await run('ls', '--config', store.config);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([
      'ID      HIGHEST  FIRST  EVENTS  SNAPSHOTS',
      'acct-a  30       1      30      2',
      'acct-b  12       1      12      1',
      'acct-c  20       6      15      1',
    ]);
  });

  it('events prints one id, and --all / --tag in the global order with offsets that --after continues', async () => {
    const one = await run(
      'events',
      'acct-a',
      '--from',
      '4',
      '--max',
      '2',
      '--json',
      '--config',
      store.config,
    );
    expect(one.code).toBe(0);
    const lines = one.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.sequenceNr, l.tags, l.message.marker])).toEqual([
      [4, ['a', 'batch'], 'MARK-acct-a-4-END'],
      [5, ['a', 'batch'], 'MARK-acct-a-5-END'],
    ]);
    const all = await run('events', '--all', '--json', '--config', store.config);
    expect(all.code).toBe(0);
    const events = all.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    // In the order they were committed: acct-a, then acct-b, then acct-c's surviving events.
    expect(events.map((e) => `${e.persistenceId}#${e.sequenceNr}`)).toEqual([
      ...Array.from({ length: 30 }, (_, i) => `acct-a#${i + 1}`),
      ...Array.from({ length: 12 }, (_, i) => `acct-b#${i + 1}`),
      ...Array.from({ length: 15 }, (_, i) => `acct-c#${i + 6}`),
    ]);
    const tagged = await run('events', '--tag', 'batch', '--max', '3', '--config', store.config);
    expect(tagged.code).toBe(0);
    expect(tagged.stdout.trim().split('\n')).toHaveLength(3);
    const after = await run(
      'events',
      '--all',
      '--after',
      events[41].offset,
      '--json',
      '--config',
      store.config,
    );
    expect(
      after.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).persistenceId),
    ).toEqual(Array.from({ length: 15 }, () => 'acct-c'));
  });

  it('snapshots lists what loads; stats counts ids and events and names the stores', async () => {
    const snaps = await run('snapshots', 'acct-a', '--config', store.config);
    expect(snaps.code).toBe(0);
    expect(
      snaps.stdout
        .trim()
        .split('\n')
        .map((l) => l.split('\t')[0]),
    ).toEqual(['20', '10']);
    const stats = await run('stats', '--config', store.config);
    expect(stats.code).toBe(0);
    expect(stats.stdout).toMatch(/^ids: 3\nevents: 57\noldest event: \S+Z\nnewest event: \S+Z\n/);
    expect(stats.stdout).toContain(`journal: postgres postgres://`);
    expect(stats.stdout).toContain(`schema "${store.schema}"`);
  });

  it('projections lists the projections whose offsets the schema keeps, with their state and source', async () => {
    const p = await openPg(store.schema);
    try {
      if (!canQuery(p.journal) || !p.offsets)
        throw new Error('the postgres provider offers queries and offsets');
      let handled = 0;
      const projection = await runProjection({
        name: 'totals',
        query: p.journal,
        source: { tag: 'a' },
        offsets: p.offsets,
        live: false,
        handler: () => {
          handled++;
        },
      });
      expect(await projection.done).toEqual({ state: 'stopped' });
      expect(handled).toBe(30);
    } finally {
      await p.close();
    }
    const r = await run('projections', '--json', '--config', store.config);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      expect.objectContaining({ name: 'totals', state: 'stopped', behind: 0, source: { tag: 'a' } }),
    ]);
  });

  it('projections reset, a writing command, moves a stopped projection back to the start', async () => {
    const reset = await run('projections', 'reset', 'totals', '--config', store.config);
    expect(reset.code).toBe(0);
    const r = await run('projections', '--json', '--config', store.config);
    expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({ name: 'totals', behind: 30 })]);
  });

  it('the read commands write nothing: every row of the schema is as it was', async () => {
    const before = await sql(`SELECT * FROM "${store.schema}".journal ORDER BY persistence_id, seq_nr`);
    const streams = await sql(`SELECT * FROM "${store.schema}".streams ORDER BY persistence_id`);
    for (const argv of [['verify'], ['ls'], ['stats'], ['events', '--all'], ['projections']]) {
      expect((await run(...argv, '--config', store.config)).code).toBe(0);
    }
    expect(await sql(`SELECT * FROM "${store.schema}".journal ORDER BY persistence_id, seq_nr`)).toEqual(
      before,
    );
    expect(await sql(`SELECT * FROM "${store.schema}".streams ORDER BY persistence_id`)).toEqual(streams);
  });

  it('without connectionString the PG* variables name the server, as for the application', async () => {
    const config = await configFor(store.schema, {});
    const saved = { ...process.env };
    Object.assign(process.env, {
      PGHOST: url.hostname,
      PGPORT: url.port,
      PGUSER: decodeURIComponent(url.username),
      PGDATABASE: url.pathname.slice(1),
      PGPASSWORD: PASSWORD,
    });
    try {
      const r = await run('ls', '--config', config);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('acct-c  20       6      15      1');
      const v = await run('verify', '--config', config);
      expect(v.stdout).toContain(`schema "${store.schema}"`);
      expect(v.stdout).toContain('(PG* variables)');
      expect(v.code).toBe(0);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  it('a schema that does not exist is an error and is not created', async () => {
    const missing = schemas.next();
    const r = await run('verify', '--config', await configFor(missing));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no Cairn schema .* a read-only open never creates one/);
    expect(await schemaExists(missing)).toBe(false);
  });

  it('a server that cannot be reached is reported without the password', async () => {
    const unreachable = new URL(connectionString);
    unreachable.port = '1';
    const r = await run(
      'ls',
      '--config',
      await configFor(store.schema, { connectionString: unreachable.toString() }),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^cairn: .*postgres:\/\/.*127\.0\.0\.1:1/);
  });

  it("a row altered behind Cairn's back: verify names the table, id and sequenceNr (exit 1)", async () => {
    const schema = schemas.next();
    await makePgData(schema);
    await sql(
      `UPDATE "${schema}".journal SET payload = payload || '\\x00'::bytea WHERE persistence_id = 'acct-b' AND seq_nr = 5`,
    );
    const r = await run('verify', '--config', await configFor(schema));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/journal-corrupted .*"acct-b".*sequenceNr 5/);
    expect(r.stdout).toContain(`"${schema}".journal`);
  });
});

/** Everything a store holds, read back in the ways an application and its projections read it. */
async function everything(journal: MessageJournal, snapshots: SnapshotStore, ids: readonly string[]) {
  if (!canQuery(journal)) throw new Error('the journal offers queries');
  const strip = (e: EventEnvelope) => ({
    persistenceId: e.persistenceId,
    sequenceNr: e.sequenceNr,
    timestamp: e.timestamp,
    tags: [...e.tags],
    message: e.message,
  });
  const all = (await collect(journal.allEvents())).map(strip);
  const byTag = (await collect(journal.eventsByTag('even'))).map(strip);
  const perId: Record<string, unknown> = {};
  for (const id of ids) {
    const chain = [];
    for (let s = await snapshots.loadLatest(id); s; ) {
      chain.push({ sequenceNr: s.sequenceNr, timestamp: s.timestamp, state: s.state });
      s = s.sequenceNr > 1 ? await snapshots.loadLatest(id, { maxSequenceNr: s.sequenceNr - 1 }) : undefined;
    }
    perId[id] = { highest: await journal.highestSequenceNr(id), snapshots: chain };
  }
  return { all, byTag, perId };
}

describe('cairn copy file -> postgres -> file', () => {
  it('keeps events, sequenceNrs, timestamps, tags, snapshots and the global order, both ways', async () => {
    const src = await layout(root.dir, 'file', 'order-src');
    const back = await layout(root.dir, 'file', 'order-back');
    const schema = schemas.next();
    const pgConfig = await configFor(schema);
    const ids = ['acct-a', 'acct-b', 'acct-c', 'x-1', 'x-2', 'x-3', 'x-4', 'gone'];
    await makeData(src);
    const data = await openData(src);
    try {
      // Interleaved: rounds of concurrent appends to four ids (shared commits), then single ones.
      for (let round = 1; round <= 6; round++) {
        await Promise.all(
          ['x-1', 'x-2', 'x-3', 'x-4'].map((id, i) =>
            data.journal.append(id, eventOf(id, round), { tags: (round + i) % 2 === 0 ? ['even'] : ['odd'] }),
          ),
        );
        await data.journal.append(`x-${(round % 4) + 1}`, eventOf('single', round), { tags: ['even'] });
      }
      await data.journal.append('acct-b', eventOf('acct-b', 13), { tags: ['even', 'late'] });
      await data.snapshots.save('x-2', 5, stateOf('x-2', 5));
      // An id whose events were all truncated keeps its numbering.
      await data.journal.appendBatch(
        'gone',
        [1, 2, 3].map((n) => eventOf('gone', n)),
      );
      await data.snapshots.save('gone', 3, stateOf('gone', 3));
      await data.journal.truncateBefore('gone', 4);
    } finally {
      await data.close();
    }

    const there = await run('copy', '--from', src.config, '--to', pgConfig, '--chunk', '4');
    expect(there.stdout).toContain("order: 88 event(s) in the source's global order");
    expect(there.stdout).toMatch(/OK\n$/);
    expect(there.code).toBe(0);
    const home = await run('copy', '--from', pgConfig, '--to', back.config);
    expect(home.stdout).toContain("order: 88 event(s) in the source's global order");
    expect(home.code).toBe(0);

    const before = await openData(src);
    const after = await openData(back);
    const pg = await openPg(schema);
    try {
      const original = await everything(before.journal, before.snapshots, ids);
      // The order is not one id after the other, so an id-by-id copy could not have kept it.
      const order = original.all.map((e) => e.persistenceId);
      expect(order).not.toEqual([...order].sort());
      expect(original.all).toHaveLength(88);
      expect(original.byTag.length).toBeGreaterThan(10);
      expect(original.perId.gone).toEqual({
        highest: 3,
        snapshots: [expect.objectContaining({ sequenceNr: 3 })],
      });
      expect(await everything(pg.journal, pg.snapshots, ids)).toEqual(original);
      expect(await everything(after.journal, after.snapshots, ids)).toEqual(original);
    } finally {
      await Promise.all([before.close(), after.close(), pg.close()]);
    }
  });
});

describe('cairn copy lmdb -> postgres', () => {
  it('copies and verifies, in the LMDB journal global order, truncated ids keeping their numbering', async () => {
    const src = await layout(root.dir, 'lmdb', 'lmdb-src');
    await makeData(src);
    const schema = schemas.next();
    const r = await run('copy', '--from', src.config, '--to', await configFor(schema), '--json');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({
      inGlobalOrder: true,
      problems: [],
      verified: { events: 57, snapshots: 4, inGlobalOrder: 57 },
      ok: true,
    });
    const ls = await run('ls', '--config', await configFor(schema));
    expect(ls.stdout).toContain('acct-c  20       6      15      1');
  });
});
