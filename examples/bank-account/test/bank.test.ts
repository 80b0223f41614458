import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { MemoryJournalStore, MemorySnapshotData } from '@cairn/actor-core';
import { runBankDemo } from '../src/bank';

const run = promisify(execFile);
const MAIN = path.resolve(__dirname, '../dist/main.js');

describe('bank-account example', () => {
  it('rebuilds every balance after a restart, alice from a snapshot and bob from events', async () => {
    const lines: string[] = [];
    const config = {
      journal: { provider: 'memory', store: new MemoryJournalStore() },
      snapshots: { provider: 'memory', store: new MemorySnapshotData() },
    };
    const result = await runBankDemo(config, (line) => lines.push(line));
    expect(result.before).toEqual({ alice: 115, bob: 42 });
    expect(result.after).toEqual(result.before);
    expect(result.recoveries).toEqual([
      { account: 'alice', balance: 115, fromSnapshot: 5, replayed: 0 },
      { account: 'bob', balance: 42, fromSnapshot: undefined, replayed: 2 },
    ]);
    expect(lines).toContain('  bob    withdraw 100 -> refused: insufficient funds (balance 40)');

    // A second run on the same storage starts from what the first one left.
    const again = await runBankDemo(config, () => undefined);
    expect(again.after).toEqual({ alice: 230, bob: 84 });
  });

  describe('npm start (built main.js)', () => {
    let dir: string;
    beforeEach(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'cairn-bank-'));
    });
    afterEach(() => rm(dir, { recursive: true, force: true }));

    it('runs on the file backend chosen by configuration and exits 0', async () => {
      const env = {
        ...process.env,
        CAIRN_JOURNAL_PATH: path.join(dir, 'journal'),
        CAIRN_SNAPSHOTS_PATH: path.join(dir, 'snapshots'),
      };
      const { stdout } = await run(process.execPath, [MAIN], { env });
      expect(stdout).toContain('backend: journal "file"');
      // Says why: the example's config file, and the variables that override it.
      expect(stdout).toMatch(
        /chosen by \S*examples\/bank-account\/cairn\.config\.json, overridden by CAIRN_JOURNAL_PATH=/,
      );
      expect(stdout).not.toContain('default backend');
      expect(stdout).toContain('business: accounts spawned on empty storage');
      expect(stdout).toMatch(/alice +balance +115 +snapshot @5 \+ 0 events replayed/);
      expect(stdout).toContain('balances after the restart match');
      expect(existsSync(path.join(dir, 'journal'))).toBe(true);
      // A second npm start on the same storage is not labelled as the first.
      const second = await run(process.execPath, [MAIN], { env });
      expect(second.stdout).toContain('recovering what earlier runs stored');
      expect(second.stdout).not.toContain('empty storage');
      expect(second.stdout).toContain('balances after the restart match');
    });

    it('falls back to memory, saying so, when the configured backend cannot be loaded', async () => {
      const env = {
        ...process.env,
        CAIRN_JOURNAL_PROVIDER: '@cairn/no-such-backend',
        CAIRN_SNAPSHOTS_PROVIDER: 'memory',
      };
      const { stdout } = await run(process.execPath, [MAIN], { env });
      expect(stdout).toContain('falling back to "memory"');
      expect(stdout).toContain('balances after the restart match');
    });
  });
});
