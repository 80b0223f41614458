/** Test support: data made on both backends, the CLI run in-process and as a built child process. */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import type { MessageJournal, SnapshotStore } from '@cairn/actor-core';
import { runCli } from '@cairn/cli';
import { FileMessageJournal } from '@cairn/journal-file';
import { LmdbMessageJournal, LmdbSnapshotStore } from '@cairn/journal-lmdb';
import { FileSnapshotStore } from '@cairn/snapshot';
import { flipByte } from '@cairn/testkit';

export type Backend = 'file' | 'lmdb';
export const BACKENDS: readonly Backend[] = ['file', 'lmdb'];

export const CLI_DIST = path.join(__dirname, '..', 'dist', 'cli.js');

export async function tempDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-cli-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Where a backend's data lives under `root`, and a config file naming it. */
export interface DataLayout {
  readonly backend: Backend;
  readonly journal: string;
  readonly snapshots: string;
  readonly config: string;
}

export async function layout(
  root: string,
  backend: Backend,
  name: string = backend,
  options: { durable?: boolean } = {},
): Promise<DataLayout> {
  const base = path.join(root, name);
  const journal = path.join(base, 'journal');
  // The lmdb provider keeps both in one environment when given one path.
  const snapshots = backend === 'lmdb' ? journal : path.join(base, 'snapshots');
  const config = path.join(root, `${name}.config.json`);
  // Fast by default: tests make data, they do not prove durability (the backends' crash tests do).
  const extra = options.durable ? {} : backend === 'file' ? { fsync: false, ioThreads: 1 } : { noSync: true };
  await writeFile(
    config,
    JSON.stringify({
      journal: { provider: backend, path: journal, ...extra },
      snapshots: { provider: backend, path: snapshots, ...extra },
    }),
  );
  return { backend, journal, snapshots, config };
}

export async function openData(
  l: DataLayout,
): Promise<{ journal: MessageJournal; snapshots: SnapshotStore; close: () => Promise<void> }> {
  if (l.backend === 'file') {
    const journal = await FileMessageJournal.open({ path: l.journal, fsync: false, ioThreads: 1 });
    const snapshots = await FileSnapshotStore.open({ path: l.snapshots, fsync: false, ioThreads: 1 });
    return {
      journal,
      snapshots,
      close: async () => void (await Promise.all([journal.close(), snapshots.close()])),
    };
  }
  const journal = await LmdbMessageJournal.open({ path: l.journal, noSync: true });
  const snapshots = await LmdbSnapshotStore.open({ path: l.snapshots, noSync: true });
  return {
    journal,
    snapshots,
    close: async () => void (await Promise.all([journal.close(), snapshots.close()])),
  };
}

/** The message stored as event `seq` of `id`: Dates and Maps, so a copy that flattens them is caught. */
export function eventOf(id: string, seq: number): unknown {
  return {
    type: 'deposited',
    marker: `MARK-${id}-${seq}-END`,
    amount: seq,
    at: new Date(1_700_000_000_000 + seq),
    tags: new Map([['seq', seq]]),
  };
}

export function stateOf(id: string, seq: number): unknown {
  return {
    balance: (seq * (seq + 1)) / 2,
    id,
    marker: `SNAP-${id}-${seq}-END`,
    asOf: new Date(1_700_000_000_000 + seq),
  };
}

/**
 * The standard data set: "acct-a" with 30 events in batches and snapshots at 10 and 20, "acct-b" with 12
 * events and a snapshot at 12, and "acct-c" with 20 events truncated below 6 and a snapshot at 5.
 */
export async function makeData(l: DataLayout): Promise<void> {
  const { journal, snapshots, close } = await openData(l);
  try {
    for (let seq = 1; seq <= 30; seq += 3) {
      await journal.appendBatch(
        'acct-a',
        [seq, seq + 1, seq + 2].map((s) => eventOf('acct-a', s)),
      );
    }
    await snapshots.save('acct-a', 10, stateOf('acct-a', 10));
    await snapshots.save('acct-a', 20, stateOf('acct-a', 20));
    for (let seq = 1; seq <= 12; seq++) await journal.append('acct-b', eventOf('acct-b', seq));
    await snapshots.save('acct-b', 12, stateOf('acct-b', 12));
    for (let seq = 1; seq <= 20; seq++) await journal.append('acct-c', eventOf('acct-c', seq));
    await snapshots.save('acct-c', 5, stateOf('acct-c', 5));
    await journal.truncateBefore('acct-c', 6);
  } finally {
    await close();
  }
}

/** Every byte offset in `file` where `marker` is stored. */
export async function offsetsOf(file: string, marker: string | Buffer): Promise<number[]> {
  const bytes = await readFile(file);
  const found: number[] = [];
  for (let at = bytes.indexOf(marker); at !== -1; at = bytes.indexOf(marker, at + 1)) found.push(at);
  return found;
}

/**
 * Damages every stored copy of `marker` in `file` (LMDB may keep an older copy of a value in a freed page)
 * by flipping the byte 5 bytes into it, and returns where. Throws when the marker is not there at all, so
 * a test cannot pass by damaging nothing.
 */
export async function damageMarker(file: string, marker: string): Promise<number[]> {
  const offsets = await offsetsOf(file, marker);
  if (offsets.length === 0) throw new Error(`${marker} is not stored in ${file}`);
  for (const at of offsets) await flipByte(file, { offset: at + 5 });
  return offsets;
}

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI in this process (sources, fast); stdout and stderr captured, not TTYs. */
export async function cli(...argv: string[]): Promise<CliRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  stderr.setEncoding('utf8').on('data', (s: string) => {
    err += s;
  });
  const code = await runCli(argv, { stdout, stderr });
  return { code, stdout: out, stderr: err };
}

/** Runs the built `cairn` (dist/cli.js) as a child process, as an operator would. */
export function cliProcess(
  argv: readonly string[],
  cwd?: string,
  env: Readonly<Record<string, string>> = {},
): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI_DIST, ...argv],
      { cwd, env: { ...process.env, NO_COLOR: '1', ...env } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/**
 * A temp directory with the standard data set (makeData) on every backend, made before the enclosing
 * describe's tests and removed after them. Read `root.dir` and `data.get(backend)` inside the tests.
 */
export function dataOnEveryBackend(): { root: { dir: string }; data: Map<Backend, DataLayout> } {
  const data = new Map<Backend, DataLayout>();
  const root = { dir: '' };
  let remove: () => Promise<void> = async () => undefined;
  beforeAll(async () => {
    const made = await tempDir();
    root.dir = made.dir;
    remove = made.remove;
    for (const backend of BACKENDS) {
      const l = await layout(root.dir, backend);
      await makeData(l);
      data.set(backend, l);
    }
  });
  afterAll(() => remove());
  return { root, data };
}
