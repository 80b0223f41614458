import * as fs from 'node:fs';
import * as path from 'node:path';
import { isPersistenceError } from '@cairn/actor-core';
import { FileMessageJournal } from '@cairn/journal-file';
import { lockFileName, ownerFileName } from '@cairn/snapshot';
import { collectingReporter, tempDir } from './journal-files';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a journal whose lock was lost', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('refuses writes, and close() completes without touching the owner file of whoever holds the lock now', async () => {
    const { reports, reporter } = collectingReporter();
    // The lock is refreshed every lockStaleMs / 2: its loss is noticed within a second.
    const journal = await FileMessageJournal.open<string>({ path: dir, lockStaleMs: 2000, reporter });
    await journal.append('a', 'kept');
    // Another process took the directory over: its lock and its owner file replace ours.
    fs.rmSync(path.join(dir, lockFileName('journal')), { recursive: true });
    fs.mkdirSync(path.join(dir, lockFileName('journal')));
    const intruder = JSON.stringify({ pid: 4242, host: 'elsewhere', since: new Date().toISOString() });
    fs.writeFileSync(path.join(dir, ownerFileName('journal')), intruder);

    for (let waited = 0; !reports.some((r) => r.kind === 'lock-lost') && waited < 5000; waited += 50) {
      await sleep(50);
    }
    expect(reports.map((r) => r.kind)).toContain('lock-lost');
    const refused = await journal.append('a', 'after').catch((e: unknown) => e);
    expect(isPersistenceError(refused)).toBe(true);

    await expect(journal.close()).resolves.toBeUndefined();
    await expect(journal.close()).resolves.toBeUndefined();
    expect(fs.readFileSync(path.join(dir, ownerFileName('journal')), 'utf8')).toBe(intruder);
    expect(fs.existsSync(path.join(dir, lockFileName('journal')))).toBe(true);
  });
});
