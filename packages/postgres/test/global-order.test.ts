import type { EventEnvelope } from '@cairn/actor-core';
import { PostgresMessageJournal } from '@cairn/postgres';
import {
  captureResources,
  collect,
  expectNoLeakedResources,
  startThrowawayPostgres,
  type ThrowawayPostgres,
} from '@cairn/testkit';
import pg from 'pg';
import { sql as sqlOn, TestSchemas } from './pg-test-env';

/**
 * A server of this file's own: these tests hold transactions open and watch what holds live readers back,
 * and on the run's shared server every other test file's transactions would hold them back too (and be
 * named as the blocker).
 */
let server: ThrowawayPostgres | undefined;
const testServerUrl = () => server!.url;
const sql = (text: string) => sqlOn(text, [], testServerUrl());
const schemas = new TestSchemas('order', testServerUrl);
beforeAll(async () => {
  server = await startThrowawayPostgres();
}, 120_000);
afterAll(async () => {
  await schemas.dropAll();
  await server?.stop();
}, 60_000);

const open = (schema: string) =>
  PostgresMessageJournal.open<string>({ connectionString: testServerUrl(), schema });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `condition` holds (checked every 20 ms), failing after `ms`. */
async function until(condition: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

/** A live reader of allEvents collecting messages until stopped. */
function liveReader(journal: PostgresMessageJournal<string>, after?: string) {
  const seen: EventEnvelope<string>[] = [];
  const controller = new AbortController();
  const done = (async () => {
    try {
      for await (const e of journal.allEvents({ live: true, signal: controller.signal, after })) seen.push(e);
    } catch (e) {
      if ((e as Error).name !== 'AbortError') throw e;
    }
  })();
  const stop = () => {
    controller.abort();
    return done;
  };
  return { seen, stop };
}

describe('the global order never skips a transaction that commits late', () => {
  it('a write whose transaction is held open is delivered before the later commits, which wait for it', async () => {
    const schema = schemas.next();
    const resources = captureResources();
    // Two journals on one schema stand for two processes: the reader's journal sees the other's commits
    // only through the database (NOTIFY and polling).
    const a = await open(schema);
    const b = await open(schema);
    const blocker = new pg.Client({ connectionString: testServerUrl() });
    await blocker.connect();
    try {
      await b.append('late', 'L1');
      const reader = liveReader(a);
      await until(() => reader.seen.length === 1, 'the reader delivered L1');

      // Hold the stream row of "late": b's next commit takes its transaction id, then waits for the lock.
      await blocker.query('BEGIN');
      await blocker.query(`SELECT * FROM "${schema}".streams WHERE persistence_id = 'late' FOR UPDATE`);
      const lateAppend = b.append('late', 'L2');
      await until(async () => {
        // From a session outside any transaction: pg_stat_activity is read once per transaction.
        const rows = await sql(
          `SELECT 1 FROM pg_stat_activity WHERE application_name = 'cairn journal' AND wait_event_type = 'Lock'
           AND backend_xid IS NOT NULL AND query LIKE '%${schema}".streams%'`,
        );
        return rows.length === 1;
      }, "b's commit waits for the lock, holding its transaction id");

      // Later transactions commit meanwhile (higher transaction ids, and here lower row positions too
      // would not matter): readers must not pass them while L2's transaction is still open.
      await a.append('early', 'E1');
      await b.appendBatch('early2', ['E2', 'E3']);
      await sleep(600); // more than two polls and any notification
      expect(reader.seen.map((e) => e.message)).toEqual(['L1']);
      expect((await collect(a.allEvents())).map((e) => e.message)).toEqual(['L1']);
      expect(await a.headOffset()).toBe(reader.seen[0]!.offset);

      // The blocking transaction ends: L2 commits, and everything is delivered in the global order, L2
      // (the older transaction) first.
      await blocker.query('COMMIT');
      expect(await lateAppend).toBe(2);
      await until(() => reader.seen.length === 5, 'the reader delivered all five');
      const order = ['L1', 'L2', 'E1', 'E2', 'E3'];
      expect(reader.seen.map((e) => e.message)).toEqual(order);
      const current = await collect(a.allEvents());
      expect(current.map((e) => e.message)).toEqual(order);
      expect(current.map((e) => e.offset)).toEqual(reader.seen.map((e) => e.offset));
      // Resuming at any delivered offset gives exactly the rest.
      for (let i = 0; i < order.length; i++) {
        const rest = await collect(b.allEvents({ after: current[i]!.offset }));
        expect(rest.map((e) => e.message)).toEqual(order.slice(i + 1));
      }
      await reader.stop();
    } finally {
      await blocker.query('ROLLBACK').catch(() => undefined);
      await blocker.end();
      await a.close();
      await b.close();
    }
    await expectNoLeakedResources(resources);
  });

  it('any open transaction on the server holds live readers back until it ends (found by polling); readerBlocker and metrics name it', async () => {
    const schema = schemas.next();
    const journal = await open(schema);
    const idle = new pg.Client({ connectionString: testServerUrl() });
    await idle.connect();
    try {
      await journal.append('x', 'before');
      const reader = liveReader(journal);
      await until(() => reader.seen.length === 1, 'the reader delivered the first event');
      // A transaction with an id, left open, in no Cairn table at all.
      await idle.query('BEGIN');
      await idle.query('SELECT pg_current_xact_id()');
      await journal.append('x', 'after');
      await sleep(400);
      expect(reader.seen.map((e) => e.message)).toEqual(['before']);
      // The journal names what holds its readers back: the open transaction's server pid, state, statement.
      const [{ pid }] = (await idle.query('SELECT pg_backend_pid() AS pid')).rows as [{ pid: number }];
      expect(await journal.readerBlocker()).toMatchObject({
        pid,
        state: 'idle in transaction',
        query: 'SELECT pg_backend_pid() AS pid',
      });
      expect((await journal.readerBlocker())!.transactionAgeMs).toBeGreaterThanOrEqual(400);
      // In metrics once it is 5 s old (checked about every second while live queries are open).
      await until(() => journal.metrics().liveQueriesHeldBackBy?.pid === pid, 'the metric names it', 15_000);
      await idle.query('COMMIT');
      // Nothing of Cairn's commits now: the poll finds that the head moved.
      await until(() => reader.seen.length === 2, 'the reader delivered the second event');
      expect(reader.seen[1]!.message).toBe('after');
      expect(await journal.readerBlocker()).toBeUndefined();
      await reader.stop();
      expect(journal.metrics().liveQueriesHeldBackBy).toBeUndefined();
    } finally {
      await idle.query('ROLLBACK').catch(() => undefined);
      await idle.end();
      await journal.close();
    }
  });

  it('truncating the last events does not move the head back; their offsets stay valid', async () => {
    const journal = await open(schemas.next());
    try {
      await journal.appendBatch('t', ['a', 'b', 'c']);
      const all = await collect(journal.allEvents());
      const head = await journal.headOffset();
      expect(head).toBe(all[2]!.offset);
      await journal.truncateBefore('t', 4);
      expect(await journal.headOffset()).toBe(head);
      expect(await collect(journal.allEvents({ after: all[1]!.offset }))).toEqual([]);
      await journal.append('t', 'd');
      expect((await collect(journal.allEvents({ after: head! }))).map((e) => e.message)).toEqual(['d']);
    } finally {
      await journal.close();
    }
  });
});
