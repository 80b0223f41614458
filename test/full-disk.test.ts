import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { isPersistenceError, type MessageJournal, type SnapshotStore } from '@cairn/actor-core';
import { FileMessageJournal } from '@cairn/journal-file';
import { LmdbMessageJournal, LmdbSnapshotStore } from '@cairn/journal-lmdb';
import { FileSnapshotStore } from '@cairn/snapshot';

/*
 * A full disk under each backend: a 6 MiB tmpfs (mounting needs root, as CI has; elsewhere the group is
 * skipped with the reason in its title). A filler file takes most of it; appends/saves run until the disk
 * refuses; then the filler goes and writing must resume without reopening.
 */
const mountPoint = fs.mkdtempSync(path.join(tmpdir(), 'cairn-full-disk-'));
let skipReason: string | undefined;
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', mountPoint], { stdio: 'pipe' });
} catch (e) {
  skipReason = `cannot mount a tmpfs here (${String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim()})`;
  fs.rmSync(mountPoint, { recursive: true, force: true });
}

afterAll(() => {
  if (skipReason !== undefined) return;
  execFileSync('umount', [mountPoint]);
  fs.rmSync(mountPoint, { recursive: true, force: true });
});

const FILLER = () => path.join(mountPoint, 'filler');

function fill(bytes: number): void {
  fs.writeFileSync(FILLER(), Buffer.alloc(bytes, 1));
}

/** The system error code anywhere in a cause chain. */
function systemCode(e: unknown): string | undefined {
  for (let c: unknown = e; c; c = (c as { cause?: unknown }).cause) {
    const code = (c as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'EIO') return code;
  }
  return undefined;
}

async function readAll(journal: MessageJournal<{ i: number }>, id: string): Promise<number[]> {
  const seen: number[] = [];
  for await (const e of journal.readFrom(id, 1)) seen.push(e.message.i);
  return seen;
}

const journals: Array<[string, (dir: string) => Promise<MessageJournal<{ i: number; pad: string }>>]> = [
  ['file', (dir) => FileMessageJournal.open({ path: dir, segmentSize: 1024 * 1024 })],
  ['lmdb', (dir) => LmdbMessageJournal.open({ path: dir })],
];
const stores: Array<[string, (dir: string) => Promise<SnapshotStore<{ n: number; pad: string }>>]> = [
  ['file', (dir) => FileSnapshotStore.open({ path: dir })],
  ['lmdb', (dir) => LmdbSnapshotStore.open({ path: dir })],
];

const group = skipReason === undefined ? describe : describe.skip;

group(`a full disk${skipReason === undefined ? '' : ` (skipped: ${skipReason})`}`, () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  beforeAll(() => process.on('unhandledRejection', onUnhandled));
  afterAll(() => process.off('unhandledRejection', onUnhandled));
  afterEach(() => {
    for (const name of fs.readdirSync(mountPoint))
      fs.rmSync(path.join(mountPoint, name), { recursive: true, force: true });
  });

  it.each(journals)(
    '%s journal: the failing append is a StorageError naming ENOSPC; writing resumes once space is freed',
    async (_name, open) => {
      const dir = path.join(mountPoint, 'journal');
      fill(3 * 1024 * 1024);
      const journal = await open(dir);
      const pad = 'x'.repeat(4000);
      let acknowledged = 0;
      let failure: unknown;
      for (let i = 1; i <= 5000 && failure === undefined; i++) {
        await journal.append('acct', { i, pad }).then(
          () => {
            acknowledged = i;
          },
          (e: unknown) => {
            failure = e;
          },
        );
      }
      expect(isPersistenceError(failure, 'ERR_STORAGE')).toBe(true);
      expect(systemCode(failure)).toMatch(/ENOSPC|EIO/);
      expect(acknowledged).toBeGreaterThan(0);
      // Reads go on, and serve exactly what was acknowledged.
      expect(await readAll(journal, 'acct')).toEqual(Array.from({ length: acknowledged }, (_, k) => k + 1));

      fs.rmSync(FILLER());
      const later = await journal.append('acct', { i: acknowledged + 1, pad });
      expect(later).toBe(acknowledged + 1);
      await journal.close();

      const reopened = await open(dir);
      try {
        expect(await readAll(reopened, 'acct')).toEqual(
          Array.from({ length: acknowledged + 1 }, (_, k) => k + 1),
        );
      } finally {
        await reopened.close();
      }
      expect(unhandled).toEqual([]);
    },
  );

  it.each(stores)(
    '%s snapshot store: the failing save is a StorageError naming ENOSPC; saving resumes once space is freed',
    async (_name, open) => {
      const dir = path.join(mountPoint, 'snapshots');
      fill(3 * 1024 * 1024);
      const store = await open(dir);
      const pad = 'y'.repeat(60_000);
      let saved = 0;
      let failure: unknown;
      for (let n = 1; n <= 500 && failure === undefined; n++) {
        // A new id each time: every snapshot is kept, so the disk fills.
        await store.save(`id-${n}`, n, { n, pad }).then(
          () => {
            saved = n;
          },
          (e: unknown) => {
            failure = e;
          },
        );
      }
      expect(isPersistenceError(failure, 'ERR_STORAGE')).toBe(true);
      expect(systemCode(failure)).toMatch(/ENOSPC|EIO/);
      expect(saved).toBeGreaterThan(0);
      expect((await store.loadLatest(`id-${saved}`))?.state.n).toBe(saved);

      fs.rmSync(FILLER());
      await store.save('after', 1, { n: -1, pad: '' });
      await store.close();

      const reopened = await open(dir);
      try {
        for (let n = 1; n <= saved; n++) expect((await reopened.loadLatest(`id-${n}`))?.state.n).toBe(n);
        expect((await reopened.loadLatest('after'))?.state.n).toBe(-1);
      } finally {
        await reopened.close();
      }
      expect(unhandled).toEqual([]);
    },
  );
});
