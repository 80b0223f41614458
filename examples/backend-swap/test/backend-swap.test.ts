import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const MAIN = path.resolve(__dirname, '../dist/main.js');

describe('backend-swap example', () => {
  it('runs the same bank on memory, file and lmdb (or says why one is skipped) and they agree', async () => {
    const { stdout } = await run(process.execPath, [MAIN], { timeout: 60_000 });
    for (const backend of ['memory', 'file', 'lmdb']) {
      expect(stdout).toMatch(
        new RegExp(
          `^${backend} +(ok +alice 115, bob 42; 1 of 2 recovered from a snapshot|skipped +.+)$`,
          'm',
        ),
      );
    }
    // memory needs no package, and the file backend is the default one: both must really run.
    expect(stdout).toMatch(/^memory +ok /m);
    expect(stdout).toMatch(/^file +ok /m);
    expect(stdout).toContain('ended with the same balances');
  });
});
