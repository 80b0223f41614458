import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { JsonlJournal, JsonlSnapshotStore } from '../src';

const run = promisify(execFile);
const example = path.join(__dirname, '..');
const cli = path.join(example, '..', '..', 'packages', 'cli', 'dist', 'cli.js');
const providerModule = path.join(example, 'dist', 'index.js');

async function cairn(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(process.execPath, [cli, ...args], { timeout: 120_000 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({
      code: e.code ?? -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
    }),
  );
}

describe('examples/custom-provider: a third-party provider', () => {
  it('passes the whole conformance kit under node:test', async () => {
    const { stdout } = await run(
      process.execPath,
      ['--test', path.join(example, 'test', 'conformance.node-test.mjs')],
      {
        cwd: example,
        timeout: 600_000,
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    const count = (name: string) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(stdout)?.[1]);
    expect(count('fail')).toBe(0);
    expect(count('pass')).toBeGreaterThanOrEqual(200);
    expect(stdout).toMatch(/jsonl journal conformance/);
    expect(stdout).toMatch(/jsonl snapshot store conformance/);
  }, 600_000);

  it('is verified by cairn read-only through its config, without cairn knowing its name', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'cairn-custom-provider-'));
    try {
      const journalDir = path.join(root, 'journal');
      const snapshotDir = path.join(root, 'snapshots');
      const journal = await JsonlJournal.open({ path: journalDir });
      await journal.appendBatch('account-1', [{ deposited: 10 }, { deposited: 5 }]);
      await journal.append('account-2', { deposited: 7 });
      await journal.close();
      const snapshots = await JsonlSnapshotStore.open({ path: snapshotDir });
      await snapshots.save('account-1', 2, { balance: 15 });
      await snapshots.close();
      const config = path.join(root, 'cairn.config.json');
      await writeFile(
        config,
        JSON.stringify({
          journal: { provider: providerModule, path: journalDir },
          snapshots: { provider: providerModule, path: snapshotDir },
        }),
      );
      const before = await readFile(path.join(journalDir, 'journal.jsonl'));
      const mtime = (await stat(path.join(journalDir, 'journal.jsonl'))).mtimeMs;

      const verified = await cairn('verify', '--config', config);
      expect(verified.stderr).toBe('');
      expect(verified.code).toBe(0);
      expect(verified.stdout).toMatch(/2 id\(s\), 3 event\(s\) read, 1 snapshot\(s\) verified/);
      expect(await readFile(path.join(journalDir, 'journal.jsonl'))).toEqual(before);
      expect((await stat(path.join(journalDir, 'journal.jsonl'))).mtimeMs).toBe(mtime);

      // Read-only opens create nothing: a directory without a journal is reported, not made into one.
      await writeFile(
        config,
        JSON.stringify({
          journal: { provider: providerModule, path: root },
          snapshots: { provider: 'memory' },
        }),
      );
      await rm(path.join(root, 'journal'), { recursive: true });
      const refused = await cairn('verify', '--config', config);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/creates nothing/);
      expect((await readdir(root)).sort()).toEqual(['cairn.config.json', 'snapshots']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }, 180_000);
});
