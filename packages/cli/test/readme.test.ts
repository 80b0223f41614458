import { readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { FileMessageJournal } from '@cairn/journal-file';
import { FileSnapshotStore } from '@cairn/snapshot';
import { flipByte } from '@cairn/testkit';
import { TestSchemas, testServerUrl } from '../../postgres/test/pg-test-env';
import { cliProcess, offsetsOf, tempDir } from './cli-fixtures';

/** The README's postgres.config.json names a schema of this test run's server. */
const schemas = new TestSchemas('readme');
const pgSchema = schemas.next();
afterAll(() => schemas.dropAll());

interface Example {
  readonly argv: string[];
  readonly expected: string;
  readonly exit: number;
}

/** The `$ cairn ...` lines of the README's console blocks, each with the output and exit code shown. */
function examples(readme: string): Example[] {
  const found: Example[] = [];
  for (const block of readme.matchAll(/```console\n([\s\S]*?)```/g)) {
    let current: { argv: string[]; lines: string[] } | undefined;
    for (const line of block[1]!.split('\n')) {
      const command = /^\$ cairn (.*)$/.exec(line);
      const exit = /^\(exit (\d)\)$/.exec(line);
      if (command) current = { argv: command[1]!.split(' '), lines: [] };
      else if (exit && current) {
        found.push({ argv: current.argv, expected: current.lines.join('\n'), exit: Number(exit[1]) });
        current = undefined;
      } else current?.lines.push(line);
    }
  }
  return found;
}

/** The README's data: account-1 (30 events in batches of 3, snapshot at 20), account-2 (12, truncated below 11, snapshot at 10). */
async function makeReadmeData(dir: string): Promise<void> {
  const eventOf = (seq: number) => ({
    type: 'deposited',
    amount: seq,
    at: new Date(1_700_000_000_000 + seq * 60_000),
  });
  const journal = await FileMessageJournal.open({
    path: path.join(dir, 'data/journal'),
    fsync: false,
    ioThreads: 1,
  });
  const snapshots = await FileSnapshotStore.open({
    path: path.join(dir, 'data/snapshots'),
    fsync: false,
    ioThreads: 1,
  });
  try {
    for (let seq = 1; seq <= 30; seq += 3)
      await journal.appendBatch('account-1', [seq, seq + 1, seq + 2].map(eventOf));
    await snapshots.save('account-1', 20, { balance: 210 });
    for (let seq = 1; seq <= 12; seq++) await journal.append('account-2', eventOf(seq));
    await snapshots.save('account-2', 10, { balance: 55 });
    await journal.truncateBefore('account-2', 11);
  } finally {
    await journal.close();
    await snapshots.close();
  }
  const config = (kind: string, where: string) =>
    JSON.stringify({
      journal: { provider: kind, path: `./${where}/journal` },
      snapshots: { provider: kind, path: `./${where}/snapshots` },
    });
  await writeFile(path.join(dir, 'cairn.config.json'), config('file', 'data'));
  await writeFile(path.join(dir, 'restored.config.json'), config('file', 'restored'));
  const pg = { provider: 'postgres', connectionString: testServerUrl(), schema: pgSchema };
  await writeFile(path.join(dir, 'postgres.config.json'), JSON.stringify({ journal: pg, snapshots: pg }));
  await writeFile(
    path.join(dir, 'lmdb.config.json'),
    JSON.stringify({
      journal: { provider: 'lmdb', path: './lmdb' },
      snapshots: { provider: 'lmdb', path: './lmdb' },
    }),
  );
}

/** Timestamps of the run and the temp directory differ from the README's; everything else must not. */
function normalize(text: string, dir: string): string {
  const server = new URL(testServerUrl());
  return (
    text
      .replaceAll(dir, '/srv/app')
      // The test server and schema stand in for the README's database.
      .replaceAll(
        `postgres://${decodeURIComponent(server.username)}@${server.host}${server.pathname}`,
        'postgres://app@db:5432/prod',
      )
      .replaceAll(`schema "${pgSchema}"`, 'schema "cairn"')
      .replace(/20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, '<time>')
      .replace(/"timestamp":\d+/g, '"timestamp":<ms>')
      // Sizes and offsets follow the backends' formats, which may change under the CLI.
      .replace(/\d+(\.\d)? (B|KiB|MiB) in/g, '<size> in')
      .replace(/\(\d+(\.\d)? (B|KiB|MiB)\)/g, '(<size>)')
      .replace(/offset \d+/g, 'offset <n>')
      .replace(/\(\d+ bytes\)/g, '(<n> bytes)')
      .replace(/quarantine\/\S+\.records/g, 'quarantine/<time>-<id>.records')
      .trimEnd()
  );
}

test('every console example in the README runs with the output and exit code shown', async () => {
  const readme = await readFile(path.join(__dirname, '..', 'README.md'), 'utf8');
  const all = examples(readme);
  expect(all.length).toBeGreaterThanOrEqual(12);
  const root = await tempDir();
  try {
    await makeReadmeData(root.dir);
    // "damaged": the same data with one byte flipped inside account-1's event 14 (its msgpack `amount: 14`).
    const { cp } = await import('node:fs/promises');
    await cp(path.join(root.dir, 'data'), path.join(root.dir, 'damaged'), { recursive: true });
    const segment = path.join(root.dir, 'damaged/journal/0000000000000001.log');
    const [at] = await offsetsOf(segment, Buffer.from([0xa6, ...Buffer.from('amount'), 0x0e]));
    await flipByte(segment, { offset: at! + 3 });
    for (const example of all) {
      const run = await cliProcess(example.argv, root.dir);
      expect({
        argv: example.argv,
        exit: run.code,
        output: normalize(run.stdout + run.stderr, root.dir),
      }).toEqual({
        argv: example.argv,
        exit: example.exit,
        output: normalize(example.expected, '/srv/app'),
      });
    }
  } finally {
    await root.remove();
  }
  // Every example is a CLI process of its own (~13 s in all on an idle machine); room for a busy one.
}, 120_000);
