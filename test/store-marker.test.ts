import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  claimStoreDirectory,
  createPersistence,
  isPersistenceError,
  STORE_MARKER_FILE,
  StoreMismatchError,
} from '@cairn/actor-core';
import { FileMessageJournal } from '@cairn/journal-file';
import { LmdbMessageJournal, LmdbSnapshotStore } from '@cairn/journal-lmdb';
import { FileSnapshotStore } from '@cairn/snapshot';

/** Every entry under `dir`, recursively, with sizes: to show that a refused open changed nothing. */
function tree(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const full = path.join(entry.parentPath, entry.name);
    out.push(`${path.relative(dir, full)} ${entry.isFile() ? fs.statSync(full).size : 'dir'}`);
  }
  return out.sort();
}

function marker(dir: string): unknown {
  return JSON.parse(fs.readFileSync(path.join(dir, STORE_MARKER_FILE), 'utf8'));
}

describe("a directory holding one backend's data is refused by the others", () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(tmpdir(), 'cairn-marker-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('each backend writes its marker on first open', async () => {
    const lmdb = path.join(root, 'lmdb');
    const file = path.join(root, 'file');
    const snaps = path.join(root, 'snaps');
    await (await LmdbMessageJournal.open({ path: lmdb })).close();
    await (await FileMessageJournal.open({ path: file })).close();
    await (await FileSnapshotStore.open({ path: snaps })).close();
    expect(marker(lmdb)).toEqual({ cairn: 'store', backend: 'lmdb', version: 1 });
    expect(marker(file)).toEqual({ cairn: 'store', backend: 'file', version: 1 });
    expect(marker(snaps)).toEqual({ cairn: 'store', backend: 'file', version: 1 });
    // An LMDB journal and snapshot store share their environment; so may the file journal and store.
    await (await LmdbSnapshotStore.open({ path: lmdb })).close();
    await (await FileSnapshotStore.open({ path: file })).close();
  });

  it('switching only the provider (LMDB data, file config) is refused with StoreMismatchError, nothing written', async () => {
    const data = path.join(root, 'data');
    const lmdb = await createPersistence({
      journal: { provider: 'lmdb', path: data },
      snapshots: { provider: 'lmdb', path: data },
    });
    await lmdb.journal.append('account-1', { deposited: 10 });
    await lmdb.snapshots.save('account-1', 1, { balance: 10 });
    await lmdb.close();
    const before = tree(data);

    const switched = await createPersistence({
      journal: { provider: 'file', path: data },
      snapshots: { provider: 'file', path: data },
    }).catch((e: unknown) => e);
    expect(switched).toBeInstanceOf(StoreMismatchError);
    expect(isPersistenceError(switched, 'ERR_STORE_MISMATCH')).toBe(true);
    expect(switched).toMatchObject({ path: data, expected: 'file' });
    expect((switched as Error).message).toContain('"lmdb" store');
    const refusedSnapshots = await FileSnapshotStore.open({ path: data }).catch((e: unknown) => e);
    expect(isPersistenceError(refusedSnapshots, 'ERR_STORE_MISMATCH')).toBe(true);
    const refusedReader = await FileMessageJournal.open({ path: data, readOnly: true }).catch(
      (e: unknown) => e,
    );
    expect(isPersistenceError(refusedReader, 'ERR_STORE_MISMATCH')).toBe(true);
    expect(tree(data)).toEqual(before);

    // The other way round: a file journal's and a file snapshot store's directories refuse LMDB.
    const files = path.join(root, 'files');
    const journal = await FileMessageJournal.open({ path: files });
    await journal.append('a', 1);
    await journal.close();
    const snapshots = await FileSnapshotStore.open({ path: path.join(root, 'file-snaps') });
    await snapshots.save('a', 1, 'state');
    await snapshots.close();
    for (const [dir, open] of [
      [files, () => LmdbMessageJournal.open({ path: files })],
      [path.join(root, 'file-snaps'), () => LmdbSnapshotStore.open({ path: path.join(root, 'file-snaps') })],
    ] as const) {
      const unchanged = tree(dir);
      const refused = await open().catch((e: unknown) => e);
      expect(isPersistenceError(refused, 'ERR_STORE_MISMATCH')).toBe(true);
      expect((refused as StoreMismatchError).found).toContain('"file" store');
      expect(tree(dir)).toEqual(unchanged);
    }
  });

  it('data written before markers existed is recognised by its files, and its own backend marks it', async () => {
    const lmdbDir = path.join(root, 'old-lmdb');
    await (await LmdbMessageJournal.open({ path: lmdbDir })).close();
    fs.rmSync(path.join(lmdbDir, STORE_MARKER_FILE));
    const refused = await FileMessageJournal.open({ path: lmdbDir }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StoreMismatchError);
    expect((refused as StoreMismatchError).found).toBe('"lmdb" data (data.mdb)');
    expect(fs.existsSync(path.join(lmdbDir, STORE_MARKER_FILE))).toBe(false);
    // A read-only open checks, but writes no marker.
    await (await LmdbMessageJournal.open({ path: lmdbDir, readOnly: true })).close();
    expect(fs.existsSync(path.join(lmdbDir, STORE_MARKER_FILE))).toBe(false);
    await (await LmdbMessageJournal.open({ path: lmdbDir })).close();
    expect(marker(lmdbDir)).toMatchObject({ backend: 'lmdb' });

    const fileDir = path.join(root, 'old-file');
    const journal = await FileMessageJournal.open({ path: fileDir });
    await journal.append('a', 1);
    await journal.close();
    fs.rmSync(path.join(fileDir, STORE_MARKER_FILE));
    const refusedLmdb = await LmdbMessageJournal.open({ path: fileDir }).catch((e: unknown) => e);
    expect((refusedLmdb as StoreMismatchError).found).toMatch(/^"file" data \(\d{16}\.(log|idx)\)$/);
    expect(fs.existsSync(path.join(fileDir, 'data.mdb'))).toBe(false);
  });

  it('processes racing to open a fresh directory all succeed: none reads a marker half written', async () => {
    // Two processes opening one new LMDB environment at once once found the marker created but not yet
    // written, and refused it as unreadable. Eight processes claim each of several fresh directories.
    const script = `
      const { claimStoreDirectory } = require(${JSON.stringify(path.join(__dirname, '..', 'packages', 'actor-core', 'dist', 'index.js'))});
      const dirs = JSON.parse(process.argv[1]);
      (async () => { for (const dir of dirs) await claimStoreDirectory(dir, 'lmdb'); })()
        .catch((e) => { console.error(e.message); process.exit(1); });
    `;
    const dirs = Array.from({ length: 80 }, (_, i) => path.join(root, `race-${i}`));
    for (const dir of dirs) fs.mkdirSync(dir);
    const runs = Array.from(
      { length: 8 },
      () =>
        new Promise<{ code: number | null; stderr: string }>((resolve) => {
          const child = spawn(process.execPath, ['-e', script, JSON.stringify(dirs)], {
            stdio: ['ignore', 'ignore', 'pipe'],
          });
          let stderr = '';
          child.stderr.on('data', (d) => {
            stderr += d;
          });
          child.on('exit', (code) => resolve({ code, stderr }));
        }),
    );
    expect(await Promise.all(runs)).toEqual(Array.from({ length: 8 }, () => ({ code: 0, stderr: '' })));
    for (const dir of dirs) {
      expect(marker(dir)).toMatchObject({ backend: 'lmdb' });
      // Nothing but the marker is left behind (the temp files are removed).
      expect(fs.readdirSync(dir)).toEqual([STORE_MARKER_FILE]);
    }
  }, 60_000);

  it('an unreadable marker is refused, not overwritten', async () => {
    const dir = path.join(root, 'garbled');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, STORE_MARKER_FILE), 'not json');
    const refused = await FileMessageJournal.open({ path: dir }).catch((e: unknown) => e);
    expect(isPersistenceError(refused, 'ERR_STORE_MISMATCH')).toBe(true);
    expect(fs.readFileSync(path.join(dir, STORE_MARKER_FILE), 'utf8')).toBe('not json');
  });
});
