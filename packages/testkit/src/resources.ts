import { readdirSync, readlinkSync } from 'node:fs';

/** What a process holds open at one moment: file descriptors and libuv handles/requests by type. */
export interface ResourceSnapshot {
  /** Open file descriptors and what they point to (Linux: /proc/self/fd), or undefined where unavailable. */
  readonly fds: ReadonlyMap<number, string> | undefined;
  /** Counts of active resources by type, e.g. { FSReqCallback: 1, Timeout: 2, MessagePort: 1 }. */
  readonly active: Readonly<Record<string, number>>;
}

function openFds(): Map<number, string> | undefined {
  try {
    const fds = new Map<number, string>();
    for (const name of readdirSync('/proc/self/fd')) {
      const fd = Number(name);
      try {
        fds.set(fd, readlinkSync(`/proc/self/fd/${name}`));
      } catch {
        // the fd readdir itself used is gone by now
      }
    }
    return fds;
  } catch {
    return undefined;
  }
}

function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

/** Takes a snapshot of open resources, to compare with `findLeakedResources` after close(). */
export function captureResources(): ResourceSnapshot {
  return { fds: openFds(), active: activeResources() };
}

/**
 * What is open now that was not open at `before`: new file descriptors (with their targets) and extra
 * active handles by type. Waits for pending callbacks to settle first (a closed worker's port, a
 * just-cleared timer), retrying for up to `settleMs`.
 */
export async function findLeakedResources(before: ResourceSnapshot, settleMs = 2000): Promise<string[]> {
  const deadline = Date.now() + settleMs;
  for (;;) {
    await new Promise((resolve) => setImmediate(resolve));
    const leaks = diff(before, captureResources());
    if (leaks.length === 0 || Date.now() >= deadline) return leaks;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function diff(before: ResourceSnapshot, after: ResourceSnapshot): string[] {
  const leaks: string[] = [];
  if (before.fds && after.fds) {
    for (const [fd, target] of after.fds) {
      if (before.fds.get(fd) !== target) leaks.push(`fd ${fd} -> ${target}`);
    }
  }
  for (const [type, count] of Object.entries(after.active)) {
    const extra = count - (before.active[type] ?? 0);
    if (extra > 0) leaks.push(`${extra} more active ${type}`);
  }
  return leaks;
}

/**
 * Fails (throws) when anything is open now that was not open at `before`: the check every backend's
 * leak test makes after close().
 */
export async function expectNoLeakedResources(before: ResourceSnapshot, settleMs = 2000): Promise<void> {
  const leaks = await findLeakedResources(before, settleMs);
  if (leaks.length > 0) throw new Error(`resources leaked after close():\n  ${leaks.join('\n  ')}`);
}
