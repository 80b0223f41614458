import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';

const MAIN = path.resolve(__dirname, '../dist/main.js');

/** Runs the built example with `env` (added to, or with `undefined` removing from, this process's). */
function runExample(
  env: Record<string, string | undefined>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN], { env: childEnv, timeout: 90_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Every line of a successful run: the server, each process's work, the totals, OK. */
function expectSuccess(run: { code: number; stdout: string; stderr: string }) {
  if (run.code !== 0) throw new Error(`exit ${run.code}\n${run.stdout}\n${run.stderr}`);
  const lines = run.stdout.trim().split('\n');
  expect(lines[0]).toMatch(/^postgres: .*, schema multi_node_\w+$/);
  expect(lines[1]).toMatch(
    /^node-a \(pid \d+\): served 8 accounts and acct-shared: 215 deposits acknowledged, \d+ conflict reload/,
  );
  expect(lines[2]).toMatch(
    /^node-b \(pid \d+\): served 8 accounts and acct-shared: 215 deposits acknowledged, \d+ conflict reload/,
  );
  expect(lines[3]).toMatch(/^projector \(pid \d+\): 430 events, exactly once into "multi_node_\w+"\.totals$/);
  expect(lines[4]).toMatch(
    /^totals: 17 accounts, 430 deposits, sum \d+: the table equals what the accounts acknowledged$/,
  );
  expect(lines[5]).toMatch(/^OK \(\d+\.\d s\)$/);
  return lines;
}

describe('examples/multi-node', () => {
  it('on a given server (CAIRN_PG_URL): two nodes and a projector, totals checked, schema dropped', async () => {
    const url = process.env.CAIRN_TEST_PG_URL!;
    const run = await runExample({ CAIRN_PG_URL: url });
    const lines = expectSuccess(run);
    expect(lines[0]).toContain('postgres: CAIRN_PG_URL postgres://');
    const password = decodeURIComponent(new URL(url).password);
    if (password) expect(run.stdout + run.stderr).not.toContain(password);
    const schema = /schema (multi_node_\w+)$/.exec(lines[0]!)![1]!;
    const { Client } = await import('pg');
    const sql = new Client({ connectionString: url });
    await sql.connect();
    try {
      const { rows } = await sql.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
      expect(rows).toEqual([]);
    } finally {
      await sql.end();
    }
  }, 180_000);

  it('with no server given, starts one of its own and removes it', async () => {
    const run = await runExample({
      CAIRN_PG_URL: undefined,
      PGHOST: undefined,
      PGPORT: undefined,
      PGUSER: undefined,
      PGPASSWORD: undefined,
      PGDATABASE: undefined,
    });
    const lines = expectSuccess(run);
    expect(lines[0]).toMatch(/^postgres: a throwaway server it started/);
    const dataDir = /data in (\S+)\)/.exec(lines[0]!)![1]!;
    expect(existsSync(dataDir)).toBe(false);
  }, 240_000); // ~6 s idle; starting a server (initdb) took over 90 s in a run at load 10
});
