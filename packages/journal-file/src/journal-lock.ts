import { readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { JournalLockedError, type LockHolder, type Reporter } from '@cairn/actor-core';
import * as lockfile from 'proper-lockfile';

/** The lock directory proper-lockfile creates (mkdir is atomic) and keeps fresh by touching its mtime. */
export const LOCK_FILE = 'journal.lock';
/** Who holds the lock: written by the holder right after it got the lock, read by whoever is refused. */
export const OWNER_FILE = 'journal.owner';

interface Owner {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
}

async function readOwner(dir: string): Promise<Owner | undefined> {
  try {
    return JSON.parse(await readFile(path.join(dir, OWNER_FILE), 'utf8')) as Owner;
  } catch {
    return undefined;
  }
}

/**
 * One writer per journal directory, across processes and within one: a second open gets
 * JournalLockedError naming the holder. A holder that died (SIGKILL, power loss) stops refreshing the
 * lock; after `staleMs` the next open takes it over and reports 'stale-lock-taken'.
 */
export class JournalLock {
  private constructor(
    private readonly dir: string,
    private readonly releaseLock: () => Promise<void>,
  ) {}

  static async acquire(
    dir: string,
    staleMs: number,
    reporter: Reporter,
    onCompromised: (error: Error) => void,
  ): Promise<JournalLock> {
    const previous = await readOwner(dir);
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(dir, {
        lockfilePath: path.join(dir, LOCK_FILE),
        realpath: false,
        stale: staleMs,
        retries: 0,
        onCompromised,
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
      const owner = await readOwner(dir);
      const holder: LockHolder = {
        ...(owner ? { pid: owner.pid, since: new Date(owner.since) } : {}),
        staleMs,
      };
      throw new JournalLockedError(dir, holder, { cause: e });
    }
    const owner: Owner = { pid: process.pid, host: os.hostname(), since: new Date().toISOString() };
    try {
      await writeFile(path.join(dir, OWNER_FILE), JSON.stringify(owner));
    } catch (e) {
      await release().catch(() => undefined);
      throw e;
    }
    if (previous && (previous.pid !== owner.pid || previous.host !== owner.host)) {
      reporter({
        kind: 'stale-lock-taken',
        message:
          `${dir}: took over the journal lock left by pid ${previous.pid} on ${previous.host} ` +
          `(held since ${previous.since}, not refreshed for over ${staleMs} ms)`,
      });
    }
    return new JournalLock(dir, release);
  }

  /** Releases the lock (and stops its refresh timer). The owner file goes first: a holder is never misnamed. */
  async release(): Promise<void> {
    await rm(path.join(this.dir, OWNER_FILE), { force: true });
    await this.releaseLock();
  }
}
