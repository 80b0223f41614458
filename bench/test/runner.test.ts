import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { CellRecord } from '../src/results-table';

const RUN = path.join(__dirname, '..', 'dist', 'run.js');
let work: string;

beforeAll(() => {
  if (!existsSync(RUN)) throw new Error(`${RUN} is missing: build the harness first (npx tsc -p bench)`);
});

beforeEach(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'bench-runner-'));
});

afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

test('one run measures every cell in its own process, prints the table, writes the results and cleans up', async () => {
  const tmpdir = path.join(work, 'data');
  const results = path.join(work, 'results');
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [RUN, '--scale', '0.002', '--systems', 'memory,raw-fs', '--tmpdir', tmpdir, '--results', results],
    { timeout: 60_000 },
  );
  const [file] = await readdir(results);
  const saved = JSON.parse(await readFile(path.join(results, file as string), 'utf8')) as {
    records: CellRecord[];
    table: string;
  };
  const statuses = saved.records.map((r) => `${r.workload} ${r.system} ${r.status}`);
  expect(statuses).toEqual([
    'W1 cairn-memory ok',
    'W1 raw-fs ok',
    'W1T cairn-memory ok',
    'W1T raw-fs n/a',
    'W2 cairn-memory ok',
    'W2 raw-fs ok',
    'W3 cairn-memory ok',
    'W3 raw-fs ok',
    'W4 cairn-memory ok',
    'W4 raw-fs ok',
    'W4b cairn-memory ok',
    'W4b raw-fs ok',
    'W5 cairn-memory ok',
    'W5 raw-fs ok',
    'W6 cairn-memory ok',
    'W6 raw-fs n/a',
    'W7 cairn-memory ok',
    'W7 raw-fs n/a',
    'W8 cairn-memory ok',
    'W8 raw-fs n/a',
  ]);
  expect(stdout).toMatch(
    /\| W4b \| raw-fs \| [\d.]+[kM]? ids\/s one by one; [\d.]+[kM]? ids\/s 32 at a time \|/,
  );
  expect(stdout).toContain(saved.table);
  expect(stdout).toMatch(/\| W3 \| raw-fs \| [\d.]+[kM]? events\/s \|/);
  // Every cell's data directory was deleted.
  expect(await readdir(tmpdir)).toEqual([]);
});

test('bad options are refused with every problem named', async () => {
  const run = promisify(execFile)(process.execPath, [
    RUN,
    '--workloads',
    'W9',
    '--systems',
    'mongo',
    '--scale',
    '0',
  ]);
  await expect(run).rejects.toMatchObject({
    code: 2,
    stderr: expect.stringMatching(
      /unknown workload "W9"[\s\S]*unknown system "mongo"[\s\S]*--scale must be a positive/,
    ),
  });
});
