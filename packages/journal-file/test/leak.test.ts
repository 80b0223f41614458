import * as fs from 'node:fs';
import * as path from 'node:path';
import { endIdleIoThreads, FileMessageJournal } from '@cairn/journal-file';
import { lockFileName, ownerFileName } from '@cairn/snapshot';
import { captureResources, expectNoLeakedResources } from '@cairn/testkit';
import { collect, tempDir } from './journal-files';

// `npm test` runs 150 cycles; CAIRN_LEAK_CYCLES=1000 runs the full thousand.
const CYCLES = Number(process.env.CAIRN_LEAK_CYCLES ?? 150);

describe('FileMessageJournal resources', () => {
  it(`${CYCLES} open/append/read/close cycles leave no fd, thread, timer or lock behind`, async () => {
    const dir = tempDir();
    try {
      // Warm up module loading and lazily created globals (libuv threadpool, proper-lockfile's exit hook).
      const warm = await FileMessageJournal.open({ path: dir, ioThreads: 1 });
      await warm.append('warm', 0);
      await warm.close();
      const before = captureResources();
      for (let i = 0; i < CYCLES; i++) {
        // Small segments: cycles roll, seal (background) and delete dead segments too.
        const journal = await FileMessageJournal.open({ path: dir, ioThreads: 1, segmentSize: 4096 });
        await Promise.all([
          journal.append(`a-${i % 7}`, { i, pad: 'x'.repeat(200) }),
          journal.appendBatch(`b-${i % 5}`, [i, i + 1, i + 2]),
        ]);
        await collect(journal.readFrom(`a-${i % 7}`, 1));
        if (i % 10 === 9) await journal.truncateBefore(`b-${i % 5}`, Number.MAX_SAFE_INTEGER);
        await journal.close();
      }
      // The cycles reused the process's shared IO thread (kept since the warm-up), starting none.
      await expectNoLeakedResources(before);
      expect(fs.existsSync(path.join(dir, lockFileName('journal')))).toBe(false);
      expect(fs.existsSync(path.join(dir, ownerFileName('journal')))).toBe(false);
      // And it ends at once when asked: every journal released it.
      const idle = captureResources();
      await endIdleIoThreads();
      expect(captureResources().fds?.size ?? 0).toBeLessThanOrEqual(idle.fds?.size ?? 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);

  it('an open that fails (bad checkpoint) releases its thread and lock too', async () => {
    const dir = tempDir();
    try {
      fs.writeFileSync(path.join(dir, 'checkpoint'), 'not a checkpoint');
      const before = captureResources();
      await expect(FileMessageJournal.open({ path: dir, ioThreads: 1 })).rejects.toMatchObject({
        name: 'JournalCorruptedError',
      });
      // The failed open released its use of the shared pool: endIdleIoThreads() ends only pools no
      // store uses, so a thread still held would show as a leak here.
      await endIdleIoThreads();
      await expectNoLeakedResources(before);
      expect(fs.existsSync(path.join(dir, lockFileName('journal')))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
