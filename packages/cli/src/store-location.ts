import { readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import {
  loadPersistenceConfig,
  type PersistenceConfig,
  persistenceConfigOrigin,
  type StoreConfig,
} from '@cairn/actor-core';
import { UsageError } from './exit-codes';

/** The backends `cairn` recognises by looking at a directory. */
export type DetectedBackend = 'file' | 'lmdb';

/** What the user pointed `cairn` at: a whole configuration, or one or two directories. */
export interface StoreSelection {
  /** `--config <file>`: a cairn.config.json. */
  readonly config?: string;
  /** `--journal <dir>`: a journal directory, backend detected. */
  readonly journal?: string;
  /** `--snapshots <dir>`: a snapshot directory, backend detected. */
  readonly snapshots?: string;
}

/**
 * The configuration to open, with `undefined` for a half that was not given (then nothing is opened for
 * it). `fromConfig` says whether the paths came from a config file (and may name custom providers).
 */
export interface ResolvedStores {
  readonly journal: StoreConfig | undefined;
  readonly snapshots: StoreConfig | undefined;
  readonly source: string;
  /** The CAIRN_* variables that changed what the config file says (`NAME=value`), as the application applies them. */
  readonly overrides: readonly string[];
}

const SEGMENT_FILE = /^\d{16}\.log$/;
const LMDB_DATA_FILE = 'data.mdb';
/** FileSnapshotStore's temp directory (TEMP_DIRECTORY in @cairn/snapshot): present once a store was opened. */
const SNAPSHOT_TEMP_DIRECTORY = '.tmp';
const SNAPSHOT_FILE = /^\d{16}-\d{16}\.snapshot$/;

async function entriesOf(dir: string, flag: string): Promise<string[]> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === 'ENOENT' ? `${flag} ${dir}: no such directory` : `${flag} ${dir}: ${(e as Error).message}`,
    );
  }
  if (!info.isDirectory()) throw new UsageError(`${flag} ${dir}: not a directory`);
  return readdir(dir);
}

/**
 * The backend of a journal directory: LMDB keeps data.mdb, the file journal its segments
 * (`0000000000000001.log`, ...). Anything else is a usage error: opening it would create an empty
 * journal there, which is never what an operator inspecting data wants.
 */
export async function detectJournalBackend(dir: string, flag = '--journal'): Promise<DetectedBackend> {
  const entries = await entriesOf(dir, flag);
  if (entries.includes(LMDB_DATA_FILE)) return 'lmdb';
  if (entries.some((e) => SEGMENT_FILE.test(e))) return 'file';
  throw new UsageError(
    `${flag} ${dir}: not a Cairn journal (no data.mdb for lmdb, no NNNNNNNNNNNNNNNN.log segment for the file journal)`,
  );
}

/**
 * The backend of a snapshot directory: LMDB keeps data.mdb, FileSnapshotStore its `.tmp` directory and
 * one directory of `<sequenceNr>-<timestamp>.snapshot` files per persistenceId.
 */
export async function detectSnapshotBackend(dir: string, flag = '--snapshots'): Promise<DetectedBackend> {
  const entries = await entriesOf(dir, flag);
  if (entries.includes(LMDB_DATA_FILE)) return 'lmdb';
  if (entries.includes(SNAPSHOT_TEMP_DIRECTORY)) return 'file';
  for (const name of entries) {
    const files = await readdir(path.join(dir, name)).catch(() => [] as string[]);
    if (files.some((f) => SNAPSHOT_FILE.test(f))) return 'file';
  }
  throw new UsageError(
    `${flag} ${dir}: not a Cairn snapshot store (no data.mdb for lmdb, no .tmp directory or *.snapshot files for the file store)`,
  );
}

/**
 * Reads a cairn.config.json named on the command line; a missing or invalid file is a usage error.
 * With `withEnvironment`, the CAIRN_* variables override it exactly as they do for the application
 * (loadPersistenceConfig with this file as CAIRN_CONFIG), so `cairn verify --config` checks the store the
 * application opens; without (`cairn copy`, whose two configs one set of variables cannot both name),
 * only the file counts.
 */
export async function readConfigFile(
  file: string,
  flag = '--config',
  withEnvironment = false,
): Promise<PersistenceConfig> {
  const absolute = path.resolve(file);
  try {
    await stat(absolute);
  } catch {
    throw new UsageError(`${flag} ${file}: no such file`);
  }
  return loadPersistenceConfig(
    withEnvironment
      ? { env: { ...process.env, CAIRN_CONFIG: absolute } }
      : { cwd: path.dirname(absolute), env: { CAIRN_CONFIG: absolute } },
  );
}

/** The CAIRN_* store variables set in this process, as `NAME=value` (CAIRN_CONFIG aside). */
async function environmentOverrides(): Promise<string[]> {
  const origin = await persistenceConfigOrigin();
  return origin.variables.filter((v) => v.name !== 'CAIRN_CONFIG').map((v) => `${v.name}=${v.value}`);
}

/**
 * Turns the command line's choice into configurations. With `--config`, the file (both halves); with
 * `--journal`/`--snapshots`, the detected backends (an LMDB journal without `--snapshots` also looks for
 * snapshots in the same environment, where the lmdb provider keeps them when given one path); with
 * neither, cairn.config.json in the working folder and the CAIRN_* variables, as the application reads them.
 * For commands that only read, every path must already exist (`mustExist`).
 */
export async function resolveStores(
  selection: StoreSelection,
  mustExist = true,
  options: { readonly withEnvironment?: boolean } = {},
): Promise<ResolvedStores> {
  const withEnvironment = options.withEnvironment ?? true;
  if (
    selection.config !== undefined &&
    (selection.journal !== undefined || selection.snapshots !== undefined)
  ) {
    throw new UsageError('give either --config or --journal/--snapshots, not both');
  }
  if (selection.config !== undefined) {
    const config = await readConfigFile(selection.config, '--config', withEnvironment);
    if (mustExist) await checkPathsExist(config, `--config ${selection.config}`);
    return {
      journal: config.journal,
      snapshots: config.snapshots,
      source: selection.config,
      overrides: withEnvironment ? await environmentOverrides() : [],
    };
  }
  if (selection.journal !== undefined || selection.snapshots !== undefined) {
    let journal: StoreConfig | undefined;
    let snapshots: StoreConfig | undefined;
    if (selection.journal !== undefined) {
      const dir = path.resolve(selection.journal);
      journal = { provider: await detectJournalBackend(dir), path: dir };
    }
    if (selection.snapshots !== undefined) {
      const dir = path.resolve(selection.snapshots);
      snapshots = { provider: await detectSnapshotBackend(dir), path: dir };
    } else if (journal?.provider === 'lmdb') {
      snapshots = { provider: 'lmdb', path: journal.path };
    }
    return { journal, snapshots, source: 'command line', overrides: [] };
  }
  const env = process.env;
  // Only Cairn's settings count (other CAIRN_* variables, a test's say, do not name data).
  const fromEnvironment = Object.keys(env).some((k) => /^CAIRN_(CONFIG$|JOURNAL_|SNAPSHOTS_)/.test(k));
  const local = await stat(path.resolve('cairn.config.json')).then(
    () => true,
    () => false,
  );
  if (!fromEnvironment && !local) {
    throw new UsageError(
      'no data given: use --config <cairn.config.json>, or --journal <dir> and/or --snapshots <dir> ' +
        '(or run where cairn.config.json is, or set CAIRN_CONFIG)',
    );
  }
  const config = await loadPersistenceConfig();
  if (mustExist) await checkPathsExist(config, 'the configuration');
  return {
    journal: config.journal,
    snapshots: config.snapshots,
    source: local ? 'cairn.config.json' : 'CAIRN_* variables',
    overrides: await environmentOverrides(),
  };
}

async function checkPathsExist(config: PersistenceConfig, origin: string): Promise<void> {
  for (const section of ['journal', 'snapshots'] as const) {
    const dir = config[section].path;
    if (typeof dir !== 'string') continue;
    const exists = await stat(dir).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!exists) {
      throw new UsageError(
        `${origin}: ${section}.path ${dir} is not a directory; nothing there to read (cairn does not create it)`,
      );
    }
  }
}
