import { readFile, readlink, rm, rmdir, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { JournalLockedError, type LockHolder, type Reporter } from '@cairn/actor-core';
import * as lockfile from 'proper-lockfile';

/**
 * The lock directory proper-lockfile creates (mkdir is atomic) and keeps fresh by touching its mtime:
 * `<name>.lock`, e.g. `journal.lock`, `snapshots.lock`.
 */
export function lockFileName(name: string): string {
  return `${name}.lock`;
}

/** Who holds the lock (`<name>.owner`): written by the holder right after it got the lock, read by whoever is refused. */
export function ownerFileName(name: string): string {
  return `${name}.owner`;
}

/** proper-lockfile's codes for a release of a lock it no longer holds (it was compromised and let go). */
const ALREADY_RELEASED = new Set(['ERELEASED', 'ENOTACQUIRED']);

interface Owner {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
  /** Linux only: enough to tell, on the same machine, that this exact process is gone. */
  readonly process?: ProcessIdentity;
}

interface ProcessIdentity {
  /** Changes at every boot. */
  readonly bootId: string;
  /** The pid namespace: pids are comparable only within one (containers have their own). */
  readonly pidNamespace: string;
  /** Clock ticks after boot when the process started: a reused pid has another. */
  readonly startTime: string;
}

async function processIdentity(pid: number): Promise<ProcessIdentity | undefined> {
  try {
    const [bootId, pidNamespace, stat] = await Promise.all([
      readFile('/proc/sys/kernel/random/boot_id', 'utf8'),
      readlink('/proc/self/ns/pid'),
      readFile(`/proc/${pid}/stat`, 'utf8'),
    ]);
    // Field 22 (starttime), counted after the command name, which may itself hold spaces or parens.
    const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    if (startTime === undefined) return undefined;
    return { bootId: bootId.trim(), pidNamespace, startTime };
  } catch {
    return undefined;
  }
}

/**
 * True only when the holder provably no longer runs: same host, and either the machine rebooted since,
 * or (in the same pid namespace) no process with its pid and start time exists. Anything less certain
 * (another host, another container, no /proc) waits for the lock to go stale instead.
 */
async function holderIsGone(owner: Owner | undefined): Promise<boolean> {
  if (!owner?.process || owner.host !== os.hostname()) return false;
  const me = await processIdentity(process.pid);
  if (!me) return false;
  if (me.bootId !== owner.process.bootId) return true;
  if (me.pidNamespace !== owner.process.pidNamespace) return false;
  const holder = await processIdentity(owner.pid);
  if (holder === undefined) {
    // No /proc entry: gone, unless we cannot read /proc at all (checked above through our own pid).
    return true;
  }
  return holder.startTime !== owner.process.startTime;
}

async function readOwner(dir: string, name: string): Promise<Owner | undefined> {
  try {
    return JSON.parse(await readFile(path.join(dir, ownerFileName(name)), 'utf8')) as Owner;
  } catch {
    return undefined;
  }
}

/**
 * One writer per directory (a journal's, a snapshot store's), across processes and within one: a second
 * acquire gets JournalLockedError naming the holder. A holder that died (SIGKILL, power loss) stops refreshing the
 * lock; after `staleMs` the next open takes it over and reports 'stale-lock-taken'. On Linux, a holder
 * on the same machine that provably no longer runs (its pid and start time are gone, in the same pid
 * namespace, or the machine rebooted) is taken over at once, also reported.
 */
export class DirectoryLock {
  /** Set once proper-lockfile reported the lock compromised: it let go of it then. */
  private lostWith: Error | undefined;
  private releasing: Promise<void> | undefined;

  private constructor(
    private readonly dir: string,
    private readonly name: string,
    private readonly releaseLock: () => Promise<void>,
  ) {}

  /** True once the lock was lost (its refresh failed, or another process took it over). */
  get lost(): boolean {
    return this.lostWith !== undefined;
  }

  /**
   * Takes the lock `name` ("journal", "snapshots") of `dir`. `onCompromised` is called once if the lock is
   * lost later (it can no longer be refreshed, or was taken over): the holder must stop writing then.
   */
  static async acquire(
    dir: string,
    name: string,
    staleMs: number,
    reporter: Reporter,
    onCompromised: (error: Error) => void,
  ): Promise<DirectoryLock> {
    let lock: DirectoryLock | undefined;
    const compromised = (error: Error) => {
      if (lock) lock.lostWith = error;
      onCompromised(error);
    };
    const previous = await readOwner(dir, name);
    const lockPath = path.join(dir, lockFileName(name));
    const take = () =>
      lockfile.lock(dir, {
        lockfilePath: lockPath,
        realpath: false,
        stale: staleMs,
        retries: 0,
        onCompromised: compromised,
      });
    let release: () => Promise<void>;
    try {
      release = await take();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
      const owner = await readOwner(dir, name);
      // A holder that provably died (SIGKILL, crash, reboot) on this machine need not be waited out.
      // The owner is read twice, apart: a lock taken a moment ago may not have its owner file yet.
      let taken: (() => Promise<void>) | undefined;
      if (await holderIsGone(owner)) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        const again = await readOwner(dir, name);
        if (again?.since === owner?.since && again?.pid === owner?.pid) {
          await rmdir(lockPath).catch(() => undefined);
          taken = await take().catch(() => undefined);
        }
      }
      if (!taken) {
        const current = (await readOwner(dir, name)) ?? owner;
        const holder: LockHolder = {
          ...(current ? { pid: current.pid, since: new Date(current.since) } : {}),
          staleMs,
        };
        throw new JournalLockedError(dir, holder, { cause: e });
      }
      release = taken;
    }
    const identity = await processIdentity(process.pid);
    const owner: Owner = {
      pid: process.pid,
      host: os.hostname(),
      since: new Date().toISOString(),
      ...(identity ? { process: identity } : {}),
    };
    try {
      await writeFile(path.join(dir, ownerFileName(name)), JSON.stringify(owner));
    } catch (e) {
      await release().catch(() => undefined);
      throw e;
    }
    // An owner file left behind means its holder never released the lock (a clean release removes it).
    if (previous) {
      reporter({
        kind: 'stale-lock-taken',
        message:
          `${dir}: took over the ${name} lock left by pid ${previous.pid} on ${previous.host} ` +
          `(held since ${previous.since}; that process is no longer running or its lock went stale)`,
      });
    }
    lock = new DirectoryLock(dir, name, release);
    return lock;
  }

  /**
   * Releases the lock (and stops its refresh timer); idempotent. The owner file goes first: a holder is
   * never misnamed. A lock already lost has nothing left to release, and its owner file may by now be
   * another holder's: both are left alone, and release completes.
   */
  release(): Promise<void> {
    this.releasing ??= (async () => {
      if (this.lostWith) return;
      await rm(path.join(this.dir, ownerFileName(this.name)), { force: true });
      await this.releaseLock().catch((e: unknown) => {
        if (!ALREADY_RELEASED.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
      });
    })();
    return this.releasing;
  }
}
