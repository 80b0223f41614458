import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/**
 * `npx cairn` and `npx cairn-torture` work right after `npm install && npm start` on a fresh clone: npm
 * links a bin only when its file exists at install time, before anything is built, so every bin must be
 * a committed script (which loads dist/ when run), never a file in dist/.
 */
const root = path.join(__dirname, '..');
const packagesWithBins = ['cli', 'testkit'];

const bins = packagesWithBins.flatMap((name) => {
  const manifest = JSON.parse(readFileSync(path.join(root, 'packages', name, 'package.json'), 'utf8')) as {
    bin: Record<string, string>;
  };
  return Object.entries(manifest.bin).map(([command, file]) => ({ name, command, file }));
});

it('names the bins cairn and cairn-torture', () => {
  expect(bins.map((b) => b.command).sort()).toEqual(['cairn', 'cairn-torture']);
});

describe.each(bins)('$command', ({ name, command, file }) => {
  const packageDir = path.join(root, 'packages', name);

  it('is a committed script outside dist/, so a fresh clone has it before the build', () => {
    expect(file.startsWith('dist/')).toBe(false);
    // Throws when git does not track the file (a clone would not have it).
    execFileSync('git', ['ls-files', '--error-unmatch', file], { cwd: packageDir, stdio: 'pipe' });
    expect(readFileSync(path.join(packageDir, file), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('runs through npx --no-install from the repository root', () => {
    const run = spawnSync('npx', ['--no-install', command, '--help'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    expect(run.stdout).toContain(`Usage: ${command}`);
  }, 60_000);

  it('says to build first when dist/ is missing', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cairn-bin-'));
    try {
      mkdirSync(path.join(dir, 'bin'));
      const copy = path.join(dir, file);
      copyFileSync(path.join(packageDir, file), copy);
      const run = spawnSync(process.execPath, [copy, '--help'], { encoding: 'utf8' });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('is missing: build first');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
