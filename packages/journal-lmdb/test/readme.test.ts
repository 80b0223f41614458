import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { main } from './readme-example';
import { useTempDirs } from './temp-dir';

const tempDir = useTempDirs();

describe('README', () => {
  it('shows exactly the example this test type-checks and runs', () => {
    const readme = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
    const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBe(readFileSync(path.join(__dirname, 'readme-example.ts'), 'utf8'));
  });

  it('runs: the balance is 12, also when run again on the same data (snapshot + replay)', async () => {
    const dir = tempDir();
    expect(await main(dir)).toBe(12);
    // Second run: loads the snapshot (12 at sequenceNr 3), appends 3 more events (+12) and replays them.
    expect(await main(dir)).toBe(24);
  });
});
