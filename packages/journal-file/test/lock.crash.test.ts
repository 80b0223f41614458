import * as fs from 'node:fs';
import { JournalLockedError, type PersistenceReport } from '@cairn/actor-core';
import { FileMessageJournal } from '@cairn/journal-file';
import { killed, spawnFixture, waitForLine } from './child-process';
import { tempDir } from './journal-files';

describe('FileMessageJournal lock across processes', () => {
  it('refuses a second process naming the holder, and takes a dead holder’s lock over once stale', async () => {
    const dir = tempDir();
    const child = spawnFixture('lock-holder.js', [dir]);
    try {
      const line = await waitForLine(child, 'locked');
      const pid = Number(line.split(' ')[1]);
      expect(pid).toBe(child.pid);

      const refused = await FileMessageJournal.open({ path: dir, lockStaleMs: 2000, ioThreads: 1 }).catch(
        (e: unknown) => e,
      );
      expect(refused).toBeInstanceOf(JournalLockedError);
      expect((refused as JournalLockedError).holder.pid).toBe(pid);
      expect((refused as JournalLockedError).holder.since).toBeInstanceOf(Date);
      expect((refused as JournalLockedError).message).toContain(`pid ${pid}`);

      // A live holder keeps refreshing the lock: still refused after more than the stale time.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      await expect(FileMessageJournal.open({ path: dir, lockStaleMs: 2000, ioThreads: 1 })).rejects.toThrow(
        JournalLockedError,
      );

      await killed(child);
      const reports: PersistenceReport[] = [];
      const started = Date.now();
      let journal: FileMessageJournal | undefined;
      while (!journal) {
        try {
          journal = await FileMessageJournal.open({
            path: dir,
            lockStaleMs: 2000,
            ioThreads: 1,
            reporter: (r) => reports.push(r),
          });
        } catch (e) {
          expect(e).toBeInstanceOf(JournalLockedError);
          expect(Date.now() - started).toBeLessThan(10_000);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      expect(reports.map((r) => r.kind)).toEqual(['stale-lock-taken']);
      expect(reports[0]!.message).toContain(`pid ${pid}`);
      await journal.append('x', 'mine now');
      await journal.close();
    } finally {
      await killed(child);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
