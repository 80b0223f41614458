import * as path from 'node:path';
import { loadPersistenceConfig } from '@cairn/actor-core';
import { startBankServer } from './server';

/**
 * `npm run start -w examples/http-bank`: the bank on the backend cairn.config.json (or CAIRN_* variables)
 * names, on 127.0.0.1 and PORT (default 3000; 0 = any free port). Prints `listening on <url>`; SIGINT or
 * SIGTERM finishes the requests in flight, flushes and closes the stores, and exits 0.
 */
async function main(): Promise<void> {
  const persistence = await loadPersistenceConfig({ cwd: path.resolve(__dirname, '..') });
  const port = Number(process.env.PORT ?? 3000);
  const passivateAfterMs = process.env.PASSIVATE_AFTER_MS
    ? Number(process.env.PASSIVATE_AFTER_MS)
    : undefined;
  const server = await startBankServer({
    persistence,
    port,
    ...(passivateAfterMs ? { passivateAfterMs } : {}),
  });
  process.stdout.write(`listening on ${server.url} (${persistence.journal.provider})\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`closing failed: ${error instanceof Error ? error.stack : String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
