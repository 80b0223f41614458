import { readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import {
  BUILTIN_PROVIDERS,
  loadPersistenceConfig,
  type PersistenceConfig,
  type PersistenceProvider,
  persistenceConfigOrigin,
  type StoreConfig,
  storeBackendOf,
} from '@cairn/actor-core';
import { UsageError } from './exit-codes';

/** The name of the provider whose data a directory holds, as its `detect` hook recognised it. */
export type DetectedBackend = string;

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

/** Each built-in provider's module, imported at most once per process (undefined: not installed). */
const loadedProviders = new Map<string, Promise<PersistenceProvider | undefined>>();

/**
 * The built-in provider `name` when it keeps its data in a directory and can recognise it (`detect`);
 * undefined otherwise, or when its package is not installed.
 */
function directoryProvider(name: string): Promise<PersistenceProvider | undefined> {
  let loading = loadedProviders.get(name);
  if (!loading) {
    const specifier = BUILTIN_PROVIDERS[name];
    loading = (async () => {
      if (specifier === undefined) return undefined;
      try {
        const { provider } = (await import(specifier)) as { provider?: PersistenceProvider };
        return provider?.requiresPath === true && typeof provider.detect === 'function'
          ? provider
          : undefined;
      } catch {
        return undefined;
      }
    })();
    loadedProviders.set(name, loading);
  }
  return loading;
}

/** Every built-in provider that keeps its data in a directory, in the order they are asked. */
async function directoryProviders(): Promise<PersistenceProvider[]> {
  const all = await Promise.all(Object.keys(BUILTIN_PROVIDERS).map(directoryProvider));
  return all.filter((p): p is PersistenceProvider => p !== undefined);
}

/** The first provider that recognises `dir` as its `kind` of store, or a usage error naming those asked. */
async function detectProvider(
  dir: string,
  flag: string,
  kind: 'journal' | 'snapshots',
): Promise<PersistenceProvider> {
  await entriesOf(dir, flag);
  // The format marker names the backend: ask that provider first, alone (loading every provider's
  // package, the database driver among them, costs each command a noticeable start-up).
  const marked = await storeBackendOf(dir);
  const first =
    marked !== undefined && marked in BUILTIN_PROVIDERS ? await directoryProvider(marked) : undefined;
  if (first && (await first.detect!(dir, kind))) return first;
  const providers = await directoryProviders();
  for (const provider of providers) {
    if (provider !== first && (await provider.detect!(dir, kind))) return provider;
  }
  const what = kind === 'journal' ? 'journal' : 'snapshot store';
  throw new UsageError(
    `${flag} ${dir}: not a Cairn ${what} (none of the providers ${providers.map((p) => p.name).join(', ')} ` +
      `recognises it; a store that was never written to holds nothing to read)`,
  );
}

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
 * The provider of a journal directory, asked of each built-in provider's `detect` (the file journal
 * keeps segments, LMDB its environment; each knows its own layout and format marker). Anything else is
 * a usage error: opening it would create an empty journal there, which is never what an operator
 * inspecting data wants.
 */
export async function detectJournalBackend(dir: string, flag = '--journal'): Promise<DetectedBackend> {
  return (await detectProvider(dir, flag, 'journal')).name;
}

/** The provider of a snapshot directory, asked as for journals. */
export async function detectSnapshotBackend(dir: string, flag = '--snapshots'): Promise<DetectedBackend> {
  return (await detectProvider(dir, flag, 'snapshots')).name;
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
 * `--journal`/`--snapshots`, the detected backends (a journal without `--snapshots` also reads snapshots
 * kept in the same directory, as the lmdb provider keeps them in one environment when given one path); with
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
    let journalProvider: PersistenceProvider | undefined;
    if (selection.journal !== undefined) {
      const dir = path.resolve(selection.journal);
      journalProvider = await detectProvider(dir, '--journal', 'journal');
      journal = { provider: journalProvider.name, path: dir };
    }
    if (selection.snapshots !== undefined) {
      const dir = path.resolve(selection.snapshots);
      snapshots = { provider: (await detectProvider(dir, '--snapshots', 'snapshots')).name, path: dir };
    } else if (
      journal !== undefined &&
      (await journalProvider?.detect?.(journal.path as string, 'snapshots'))
    ) {
      // The journal's own directory holds its provider's snapshot store too (LMDB keeps both in one
      // environment when given one path), so `--journal` alone also reads those snapshots.
      snapshots = { provider: journal.provider, path: journal.path };
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
