import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const MAIN = path.resolve(__dirname, '../dist/main.js');

describe('backend-swap example', () => {
  it('runs the same bank on memory, file and lmdb and they agree', async () => {
    const { stdout } = await run(process.execPath, [MAIN], { timeout: 60_000 });
    // Every backend is installed in this repository (the example depends on both packages), so none may
    // be skipped here; the skip path is for an application that installed only some of them.
    for (const backend of ['memory', 'file', 'lmdb']) {
      expect(stdout).toMatch(
        new RegExp(`^${backend} +ok +alice 115, bob 42; 1 of 2 recovered from a snapshot$`, 'm'),
      );
    }
    expect(stdout).not.toMatch(/skipped/);
    expect(stdout).toContain('ended with the same balances');
  });
});
