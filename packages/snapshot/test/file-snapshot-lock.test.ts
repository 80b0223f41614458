import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { isPersistenceError, JournalLockedError } from '@cairn/actor-core';
import { FileSnapshotStore, lockFileName } from '@cairn/snapshot';

const HOLDER = path.join(__dirname, 'fixtures', 'snapshot-lock-holder.js');

/** Starts a process that opens the store at `dir` and holds it; resolves once it has the lock. */
function holdInChild(dir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [HOLDER, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d) => {
      err += d;
    });
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().startsWith('locked')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`holder exited with ${code}: ${err}`)));
  });
}

describe('FileSnapshotStore locks its directory like the journal', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(tmpdir(), 'cairn-snapshot-lock-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a second process cannot open it writable (JournalLockedError naming the holder), nothing written', async () => {
    const child = await holdInChild(dir);
    try {
      const refused = await FileSnapshotStore.open({ path: dir, lockStaleMs: 2000 }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(JournalLockedError);
      expect(isPersistenceError(refused, 'ERR_JOURNAL_LOCKED')).toBe(true);
      expect((refused as JournalLockedError).holder.pid).toBe(child.pid);
      // Read-only opens take no lock: inspection beside the writer still works.
      const reader = await FileSnapshotStore.open({ path: dir, readOnly: true });
      await expect(reader.loadLatest('a')).resolves.toBeUndefined();
      await reader.close();
    } finally {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
    }
    // The holder died: on this machine its lock is taken over at once.
    const store = await FileSnapshotStore.open<string>({
      path: dir,
      lockStaleMs: 2000,
      reporter: () => undefined,
    });
    await store.save('a', 1, 'one');
    await store.close();
  });

  it('stores of one process share the lock; the last close releases it', async () => {
    const first = await FileSnapshotStore.open<string>({ path: dir });
    const second = await FileSnapshotStore.open<string>({ path: dir });
    await first.save('a', 1, 'one');
    await first.close();
    expect(fs.existsSync(path.join(dir, lockFileName('snapshots')))).toBe(true);
    await second.save('a', 2, 'two');
    await second.close();
    expect(fs.existsSync(path.join(dir, lockFileName('snapshots')))).toBe(false);
  });

  it('a read-only open takes no lock', async () => {
    const writer = await FileSnapshotStore.open<string>({ path: dir });
    await writer.close();
    const reader = await FileSnapshotStore.open({ path: dir, readOnly: true });
    expect(fs.existsSync(path.join(dir, lockFileName('snapshots')))).toBe(false);
    await reader.close();
  });
});
