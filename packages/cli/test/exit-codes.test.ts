import { readdir } from 'node:fs/promises';
import * as path from 'node:path';
import {
  BACKENDS,
  CLI_DIST,
  cliProcess,
  damageMarker,
  dataOnEveryBackend,
  layout,
  makeData,
  tempDir,
} from './cli-fixtures';

// The built CLI as a child process: what an operator's shell and scripts see.
describe('cairn (built, as a child process): exit codes', () => {
  const { root, data } = dataOnEveryBackend();

  test.each(BACKENDS)(
    '%s: verify on clean data exits 0, by --journal/--snapshots and by --config',
    async (backend) => {
      const l = data.get(backend)!;
      const byDirs = await cliProcess(['verify', '--journal', l.journal, '--snapshots', l.snapshots]);
      expect(byDirs.stderr).toBe('');
      expect(byDirs.stdout).toContain('3 id(s), 57 event(s) read, 4 snapshot(s) verified');
      expect(byDirs.stdout).toContain('OK: no problems found');
      expect(byDirs.code).toBe(0);
      const byConfig = await cliProcess(['verify', '--config', l.config, '--json']);
      expect(byConfig.code).toBe(0);
      expect(JSON.parse(byConfig.stdout)).toMatchObject({
        ids: 3,
        events: 57,
        snapshotsVerified: 4,
        ok: true,
        problems: [],
      });
    },
  );

  test('usage errors exit 2 and change nothing', async () => {
    const l = data.get('file')!;
    const before = await readdir(root.dir);
    const cases: Array<[string[], RegExp]> = [
      [['verify', '--journal', path.join(root.dir, 'missing')], /no such directory/],
      [['verify', '--journal', root.dir], /not a Cairn journal/],
      [['verify', '--config', path.join(root.dir, 'nope.json')], /no such file/],
      [['verify', '--config', l.config, '--journal', l.journal], /either --config or --journal/],
      [['verify', '--bogus'], /unknown option '--bogus'/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['events', 'acct-a', '--from', '0', '--journal', l.journal], /--from must be at least 1/],
      [['events', 'acct-a', '--max', 'ten', '--journal', l.journal], /--max must be a whole number/],
      [['repair', '--journal', l.journal], /needs an explicit --truncate-after-corruption/],
      [['copy', '--from', l.config], /copy needs --to/],
    ];
    for (const [argv, message] of cases) {
      const run = await cliProcess(argv);
      expect({ argv, code: run.code }).toEqual({ argv, code: 2 });
      expect(run.stderr).toMatch(message);
      expect(run.stdout).toBe('');
    }
    // Nothing was created for the missing paths.
    expect(await readdir(root.dir)).toEqual(before);
  });

  test('without flags: cairn.config.json in the working directory, as the application reads it', async () => {
    const work = await tempDir();
    try {
      const none = await cliProcess(['ls'], work.dir);
      expect(none.code).toBe(2);
      expect(none.stderr).toMatch(/no data given: use --config/);
      const { copyFile } = await import('node:fs/promises');
      await copyFile(data.get('lmdb')!.config, path.join(work.dir, 'cairn.config.json'));
      const run = await cliProcess(['ls', '--json'], work.dir);
      expect(run.code).toBe(0);
      expect(JSON.parse(run.stdout).map((r: { persistenceId: string }) => r.persistenceId)).toEqual([
        'acct-a',
        'acct-b',
        'acct-c',
      ]);
    } finally {
      await work.remove();
    }
  });

  test('a bad config file is a usage error listing its problems', async () => {
    const { writeFile } = await import('node:fs/promises');
    const bad = path.join(root.dir, 'bad.config.json');
    await writeFile(bad, JSON.stringify({ journal: { provider: 'nosuch!' }, extra: 1 }));
    const run = await cliProcess(['ls', '--config', bad]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/unknown key "extra"/);
    expect(run.stderr).toMatch(/snapshots: missing/);
  });

  test("output into a closed pipe (cairn ls | head) ends quietly with the command's exit code", async () => {
    const { spawn } = await import('node:child_process');
    const l = data.get('file')!;
    const child = spawn(process.execPath, [CLI_DIST, 'events', 'acct-a', '--journal', l.journal], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Closed before the child writes anything: every write it makes fails with EPIPE.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  test('--version exits 0; no command at all is a usage error', async () => {
    const version = await cliProcess(['--version']);
    expect(version).toMatchObject({ code: 0, stdout: '0.1.0\n' });
    const none = await cliProcess([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('Usage: cairn');
  });

  test('--help exits 0', async () => {
    const run = await cliProcess(['--help']);
    expect(run.code).toBe(0);
    for (const command of ['verify', 'ls', 'events', 'snapshots', 'stats', 'repair', 'copy']) {
      expect(run.stdout).toContain(command);
    }
  });

  test('--config with CAIRN_* variables checks the store the application opens, and names it', async () => {
    const work = await tempDir();
    try {
      const damaged = await layout(work.dir, 'file', 'damaged');
      await makeData(damaged);
      await damageMarker(path.join(damaged.journal, '0000000000000001.log'), 'MARK-acct-b-7-END');
      // The config names a clean LMDB store; the variables, as the application honours them, the damaged one.
      const env = {
        CAIRN_JOURNAL_PROVIDER: 'file',
        CAIRN_JOURNAL_PATH: damaged.journal,
        CAIRN_SNAPSHOTS_PROVIDER: 'file',
        CAIRN_SNAPSHOTS_PATH: damaged.snapshots,
      };
      // A config with no backend-specific options, so the variables can switch its provider.
      const clean = await layout(work.dir, 'lmdb', 'clean', { durable: true });
      await makeData(clean);
      const run = await cliProcess(['verify', '--config', clean.config], undefined, env);
      expect(run.code).toBe(1);
      expect(run.stdout).toContain(`journal: file ${damaged.journal}\n`);
      expect(run.stdout).toContain(`snapshots: file ${damaged.snapshots}\n`);
      expect(run.stdout).toContain('sequenceNr 7..12 of "acct-b" unreadable');
      expect(run.stderr).toContain(`CAIRN_JOURNAL_PATH=${damaged.journal}`);
      expect(run.stderr).toContain('as for the application');
      // Without the variables, the same command checks the clean store.
      const plain = await cliProcess(['verify', '--config', clean.config]);
      expect(plain.code).toBe(0);
      expect(plain.stdout).toContain(`journal: lmdb ${clean.journal}\n`);
    } finally {
      await work.remove();
    }
  });

  test('file journal with a flipped byte: verify exits 1 naming file, offset, id and sequenceNr', async () => {
    const work = await tempDir();
    try {
      const l = await layout(work.dir, 'file');
      await makeData(l);
      const segment = path.join(l.journal, '0000000000000001.log');
      await damageMarker(segment, 'MARK-acct-b-7-END');
      const run = await cliProcess(['verify', '--config', l.config]);
      expect(run.code).toBe(1);
      expect(run.stdout).toMatch(
        new RegExp(
          `journal-corrupted \\[file ${segment.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}, offset \\d+, id "acct-b", sequenceNr 7\\]`,
        ),
      );
      expect(run.stdout).toContain('sequenceNr 7..12 of "acct-b" unreadable');
      const json = JSON.parse((await cliProcess(['verify', '--config', l.config, '--json'])).stdout);
      expect(json.ok).toBe(false);
      expect(json.problems).toContainEqual(
        expect.objectContaining({
          kind: 'journal-corrupted',
          file: segment,
          persistenceId: 'acct-b',
          sequenceNr: 7,
          offset: expect.any(Number),
        }),
      );
      // The other ids still verify in full: 30 + 6 good events of acct-b + 15.
      expect(json.events).toBe(30 + 6 + 15);

      // events: the good ones, then the location of the bad one, exit 1.
      const events = await cliProcess(['events', 'acct-b', '--config', l.config]);
      expect(events.code).toBe(1);
      expect(
        events.stdout
          .trim()
          .split('\n')
          .map((line) => Number(line.split('\t')[0])),
      ).toEqual([1, 2, 3, 4, 5, 6]);
      expect(events.stderr).toMatch(
        /error after 6 event\(s\): journal-corrupted \[file .*0000000000000001\.log, offset \d+, id "acct-b", sequenceNr 7\]/,
      );

      // repair: says exactly what it cuts, cuts it (exit 0); test/repair.test.ts covers it in detail.
      const repair = await cliProcess([
        'repair',
        '--truncate-after-corruption',
        'acct-b',
        '--config',
        l.config,
      ]);
      expect(repair.code).toBe(0);
      expect(repair.stdout).toContain('a repair keeps sequenceNr 1..6 and cuts 7..12 (6 event(s))');
      expect(repair.stdout).toMatch(/cut: 7\.\.12 \(\d+ bytes\); kept through 6/);
      // The journal reads clean now; acct-b's snapshot at 12 is ahead of it, which verify names.
      const after = await cliProcess(['verify', '--config', l.config]);
      expect(after.stdout).not.toContain('journal-corrupted');
      expect(after.stdout).toContain('snapshot-ahead');
    } finally {
      await work.remove();
    }
  });

  test('lmdb journal with a flipped byte in an event: verify exits 1 naming the key, id and sequenceNr', async () => {
    const work = await tempDir();
    try {
      const l = await layout(work.dir, 'lmdb');
      await makeData(l);
      const file = path.join(l.journal, 'data.mdb');
      await damageMarker(file, 'MARK-acct-a-17-END');
      const run = await cliProcess(['verify', '--journal', l.journal, '--json']);
      expect(run.code).toBe(1);
      const json = JSON.parse(run.stdout);
      expect(json.problems).toContainEqual(
        expect.objectContaining({
          kind: 'journal-corrupted',
          persistenceId: 'acct-a',
          sequenceNr: 17,
          key: expect.stringContaining('acct-a'),
        }),
      );
    } finally {
      await work.remove();
    }
  });
});
