import { readFile, readlink } from 'node:fs/promises';
import * as os from 'node:os';

/**
 * Who a lock record names: enough to tell later, from another process on the same machine, whether that
 * exact process still runs. An LMDB environment is only ever shared by processes of one machine (LMDB
 * needs a local file system and shared memory), so the check is always made on the holder's machine.
 */
export interface ProcessMark {
  readonly pid: number;
  readonly host: string;
  /** Linux: changes at every boot. */
  readonly bootId?: string;
  /** Linux: clock ticks after boot when the process started; a reused pid has another. */
  readonly startTime?: string;
}

let own: Promise<ProcessMark> | undefined;

/** This process's mark (computed once). */
export function ownProcessMark(): Promise<ProcessMark> {
  own ??= markOf(process.pid);
  return own;
}

async function markOf(pid: number): Promise<ProcessMark> {
  const host = os.hostname();
  try {
    const [bootId, stat] = await Promise.all([
      readFile('/proc/sys/kernel/random/boot_id', 'utf8'),
      readFile(`/proc/${pid}/stat`, 'utf8'),
      // Pids compare only within one pid namespace; reading ours proves /proc is this namespace's.
      readlink('/proc/self/ns/pid'),
    ]);
    // Field 22 (starttime), counted after the command name, which may itself hold spaces or parens.
    const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return { pid, host, bootId: bootId.trim(), ...(startTime ? { startTime } : {}) };
  } catch {
    return { pid, host };
  }
}

/**
 * False only when the process a mark names provably no longer runs: the machine rebooted since, or no
 * process has its pid (with its start time, where /proc tells it). Where /proc is missing (not Linux)
 * a pid that exists counts as alive, so a reused pid keeps a dead holder's lock until that pid exits.
 */
export async function stillRuns(mark: ProcessMark): Promise<boolean> {
  if (mark.host !== os.hostname()) return true;
  const me = await ownProcessMark();
  if (me.bootId !== undefined && mark.bootId !== undefined && me.bootId !== mark.bootId) return false;
  if (!pidExists(mark.pid)) return false;
  if (mark.startTime === undefined || me.startTime === undefined) return true;
  const now = await markOf(mark.pid);
  return now.startTime === undefined || now.startTime === mark.startTime;
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, owned by someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
