/**
 * `cairn copy` from a file journal to PostgreSQL, timed: the way an application moves to a database.
 * Makes a file journal of IDS ids x PER events (appended `interleaved`: rounds of one event per id,
 * concurrently, so the global order mixes the ids; or in `blocks`: one id after the other), starts a
 * throwaway PostgreSQL server (durable defaults), and runs the copy through the CLI, comparison included.
 *
 *   npm run bench:copy -- [ids] [eventsPerId] [interleaved|blocks]     (default 200 100 interleaved)
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { runCli } from '@cairn/cli';
import { FileMessageJournal } from '@cairn/journal-file';
import { startThrowawayPostgres } from '@cairn/testkit';

async function main(): Promise<void> {
  const ids = Number(process.argv[2] ?? 200);
  const per = Number(process.argv[3] ?? 100);
  const mode = process.argv[4] ?? 'interleaved';
  if (!(ids > 0 && per > 0 && (mode === 'interleaved' || mode === 'blocks'))) {
    throw new Error('usage: copy-to-postgres [ids] [eventsPerId] [interleaved|blocks]');
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-copy-bench-'));
  const server = await startThrowawayPostgres();
  try {
    const journal = await FileMessageJournal.open({ path: path.join(dir, 'journal'), fsync: false });
    const event = (i: number, r: number) => ({
      type: 'deposited',
      account: i,
      round: r,
      note: 'x'.repeat(50),
    });
    if (mode === 'interleaved') {
      for (let r = 0; r < per; r++) {
        await Promise.all(
          Array.from({ length: ids }, (_, i) => journal.append(`id-${i}`, event(i, r), { tags: ['bank'] })),
        );
      }
    } else {
      for (let i = 0; i < ids; i++) {
        await journal.appendBatch(
          `id-${i}`,
          Array.from({ length: per }, (_, r) => event(i, r)),
          { tags: ['bank'] },
        );
      }
    }
    await journal.close();
    await mkdir(path.join(dir, 'snapshots'));
    const from = path.join(dir, 'file.config.json');
    const to = path.join(dir, 'postgres.config.json');
    await writeFile(
      from,
      JSON.stringify({
        journal: { provider: 'file', path: './journal' },
        snapshots: { provider: 'file', path: './snapshots' },
      }),
    );
    const pg = { provider: 'postgres', connectionString: server.url, schema: 'bench' };
    await writeFile(to, JSON.stringify({ journal: pg, snapshots: pg }));
    const started = performance.now();
    const code = await runCli(['copy', '--from', from, '--to', to], {
      stdout: process.stdout,
      // The progress bar and notes are not part of the result.
      stderr: new Writable({ write: (_chunk, _encoding, done) => done() }),
    });
    const ms = performance.now() - started;
    const events = ids * per;
    console.log(
      `${events} events of ${ids} ids (${mode}), file -> postgres: ${(ms / 1000).toFixed(1)} s including the comparison, ` +
        `${Math.round(events / (ms / 1000))} events/s, exit ${code}`,
    );
    if (code !== 0) process.exitCode = 1;
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
