/**
 * The third process: a projection keeping each account's balance and deposit count in a table of the
 * same schema, exactly once: each event's row update and the projection's offset commit in one
 * transaction (runProjection with `exactlyOnce` on the postgres offset store). Runs live until the parent
 * says the nodes are done, then catches up with the journal's head, stops and reports the table.
 * argv: <schema>; CAIRN_PG_URL or the PG* variables name the server.
 */
import { canQuery } from '@cairn/actor-core';
import { PostgresMessageJournal, type PostgresTransaction } from '@cairn/postgres';
import { runProjection } from '@cairn/projection';
import pg from 'pg';
import type { Deposited } from './accounts';

export interface ProjectorReport {
  readonly type: 'projector-done';
  readonly pid: number;
  readonly events: number;
  /** The table the projection kept: balance and deposits per account. */
  readonly totals: Record<string, { balance: number; deposits: number }>;
}

async function main(): Promise<void> {
  const schema = process.argv[2]!;
  const connection = process.env.CAIRN_PG_URL ? { connectionString: process.env.CAIRN_PG_URL } : {};
  // Opened once the nodes made the schema (the parent starts this process after they are up).
  const journal = await PostgresMessageJournal.open<Deposited>({ schema, ...connection });
  const offsets = journal.offsetStore();
  const table = `"${schema}".totals`;
  // The read model's table, made and read with node-postgres (the projection writes it through Cairn's transaction).
  const sql = new pg.Client(connection);
  try {
    await sql.connect();
    await sql.query(
      `CREATE TABLE IF NOT EXISTS ${table} (account text PRIMARY KEY, balance bigint NOT NULL, deposits int NOT NULL)`,
    );
    if (!canQuery(journal)) throw new Error('the postgres journal offers queries');
    const projection = await runProjection<Deposited>({
      name: 'totals',
      query: journal,
      source: { all: true },
      offsets,
      exactlyOnce: true,
      handler: async (event, { transaction }) => {
        // In the transaction that saves the event's offset: both commit, or neither.
        await (transaction as PostgresTransaction).query(
          `INSERT INTO ${table} VALUES ($1, $2, 1) ON CONFLICT (account) DO UPDATE
           SET balance = totals.balance + EXCLUDED.balance, deposits = totals.deposits + 1`,
          [event.persistenceId.replace(/^account-/, ''), event.message.amount],
        );
      },
    });
    process.send!({ type: 'projector-ready' });
    await new Promise<void>((resolve) => process.once('message', () => resolve()));
    // The nodes are done: wait until the projection handled everything up to the journal's head.
    const head = await journal.headOffset();
    while (projection.metrics().lastOffset !== head) {
      if (projection.state === 'failed') throw projection.error;
      await new Promise((r) => setTimeout(r, 20));
    }
    const events = projection.metrics().eventsHandled;
    await projection.stop();
    const { rows } = await sql.query<{ account: string; balance: number; deposits: number }>(
      `SELECT account, balance::int AS balance, deposits FROM ${table} ORDER BY account`,
    );
    const report: ProjectorReport = {
      type: 'projector-done',
      pid: process.pid,
      events,
      totals: Object.fromEntries(rows.map((r) => [r.account, { balance: r.balance, deposits: r.deposits }])),
    };
    process.send!(report);
  } finally {
    await sql.end().catch(() => undefined);
    await journal.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
