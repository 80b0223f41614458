import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { ConfigError } from './errors';
import { memoryProvider } from './memory-provider';
import type { MessageJournal, OffsetStore, PersistenceProvider, SnapshotStore } from './spi';
import { didYouMean } from './suggest';

/** One half of the configuration: which provider, where, and its provider-specific options. */
export interface StoreConfig {
  /** "memory", "file", "lmdb", "postgres", or a module specifier (package name or file path) exporting `provider`. */
  readonly provider: string;
  /** Data directory; required by "file" and "lmdb". Relative paths resolve against the config file's folder. */
  readonly path?: string;
  readonly [option: string]: unknown;
}

/** The shape of `cairn.config.json`, and of what `createPersistence` takes. */
export interface PersistenceConfig {
  readonly journal: StoreConfig;
  readonly snapshots: StoreConfig;
}

/** An opened journal and snapshot store; `close()` closes both. */
export interface Persistence<M = unknown, S = unknown> {
  readonly journal: MessageJournal<M>;
  readonly snapshots: SnapshotStore<S>;
  /**
   * Where projections keep their offsets, kept by the journal's provider next to the journal's data
   * (memory: in its store; file: files in the journal's directory; lmdb: a database in its environment).
   * Undefined when the journal's provider offers none (a third-party provider may not): then a
   * projection needs an OffsetStore passed in. It lives as long as `journal`.
   */
  readonly offsets: OffsetStore | undefined;
  close(): Promise<void>;
}

/** Built-in provider names and the package each lives in. */
export const BUILTIN_PROVIDERS: Readonly<Record<string, string>> = {
  file: '@cairn/journal-file',
  lmdb: '@cairn/journal-lmdb',
  postgres: '@cairn/postgres',
};

const SECTIONS = ['journal', 'snapshots'] as const;
type Section = (typeof SECTIONS)[number];

export interface LoadConfigOptions {
  /** Folder to look for cairn.config.json in. Default process.cwd(). */
  readonly cwd?: string;
  /** Environment to read CAIRN_* variables from. Default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/**
 * Reads the persistence configuration: `cairn.config.json` in the working folder (or the file named by
 * CAIRN_CONFIG), overridden by CAIRN_JOURNAL_PROVIDER, CAIRN_JOURNAL_PATH, CAIRN_SNAPSHOTS_PROVIDER and
 * CAIRN_SNAPSHOTS_PATH. Relative paths in the file resolve against the file's folder, those from the
 * environment against the working folder. Every problem found is reported in one ConfigError.
 */
export async function loadPersistenceConfig(options: LoadConfigOptions = {}): Promise<PersistenceConfig> {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const problems: string[] = [];
  const explicit = env.CAIRN_CONFIG;
  const file = path.resolve(cwd, explicit ?? 'cairn.config.json');
  let fromFile: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      problems.push(`${file}: must hold a JSON object`);
    } else {
      fromFile = parsed as Record<string, unknown>;
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' || explicit !== undefined) {
      problems.push(
        code === 'ENOENT'
          ? `CAIRN_CONFIG names ${file}, which does not exist`
          : `${file}: ${(e as Error).message}`,
      );
    }
  }

  const merged: Record<string, unknown> = { ...fromFile };
  for (const section of SECTIONS) {
    const base = fromFile[section];
    const sectionConfig: Record<string, unknown> =
      typeof base === 'object' && base !== null && !Array.isArray(base) ? { ...(base as object) } : {};
    if (typeof sectionConfig.path === 'string' && sectionConfig.path !== '')
      sectionConfig.path = path.resolve(path.dirname(file), sectionConfig.path);
    // A provider given as a relative file path resolves like `path`: against the file's folder.
    if (typeof sectionConfig.provider === 'string' && isRelativeSpecifier(sectionConfig.provider))
      sectionConfig.provider = path.resolve(path.dirname(file), sectionConfig.provider);
    const prefix = `CAIRN_${section.toUpperCase()}_`;
    const provider = env[`${prefix}PROVIDER`];
    const dir = env[`${prefix}PATH`];
    if (provider !== undefined)
      sectionConfig.provider = isRelativeSpecifier(provider) ? path.resolve(cwd, provider) : provider;
    if (dir !== undefined) sectionConfig.path = path.resolve(cwd, dir);
    if (base !== undefined && (typeof base !== 'object' || base === null || Array.isArray(base))) {
      merged[section] = base; // left as is so validation names it
    } else if (Object.keys(sectionConfig).length > 0) {
      merged[section] = sectionConfig;
    }
    for (const name of Object.keys(env)) {
      if (name.startsWith(prefix) && name !== `${prefix}PROVIDER` && name !== `${prefix}PATH`) {
        problems.push(
          `environment variable ${name} is not a Cairn setting (known: ${prefix}PROVIDER, ${prefix}PATH)`,
        );
      }
    }
  }
  // Every level at once: the shape, the providers, and each provider's own options.
  problems.push(...(await checkConfig(merged)).problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return merged as unknown as PersistenceConfig;
}

/** "./my-provider.js" or "../providers/x.js": a file path relative to something, not a package name. */
function isRelativeSpecifier(specifier: string): boolean {
  return /^\.{1,2}[/\\]/.test(specifier);
}

/**
 * Every problem of a configuration, all levels together: its shape, each half's provider (loaded by
 * dynamic import), the path the built-in providers need, and each provider's own option check. A half
 * whose shape is broken is still checked as far as it can be, so one ConfigError names everything.
 */
async function checkConfig(
  config: unknown,
): Promise<{ problems: string[]; providers: Map<Section, PersistenceProvider> }> {
  const problems = checkShape(config);
  const providers = new Map<Section, PersistenceProvider>();
  if (typeof config !== 'object' || config === null || Array.isArray(config)) return { problems, providers };
  for (const section of SECTIONS) {
    const value = (config as Record<string, unknown>)[section];
    if (typeof value !== 'object' || value === null || Array.isArray(value)) continue;
    const { provider: name, ...options } = value as Record<string, unknown>;
    if (typeof name !== 'string' || name.length === 0) continue;
    const provider = await resolveProvider(name, problems, section);
    if (!provider) continue;
    providers.set(section, provider);
    if (provider.requiresPath === true && typeof options.path !== 'string') {
      problems.push(`${section}.path: required by the "${provider.name}" provider`);
    }
    for (const p of provider.validateOptions?.(section, options) ?? []) problems.push(`${section}.${p}`);
  }
  return { problems: [...new Set(problems)], providers };
}

/**
 * Opens the journal and snapshot store the configuration names. Providers are loaded by dynamic import,
 * so only the backends in use need to be installed. Every problem (shape, unknown provider, missing
 * package, provider options) is reported in one ConfigError before anything is opened.
 */
export async function createPersistence<M = unknown, S = unknown>(
  config: PersistenceConfig,
): Promise<Persistence<M, S>> {
  const { problems, providers } = await checkConfig(config);
  if (problems.length > 0) throw new ConfigError(problems);

  const { provider: _j, ...journalOptions } = config.journal;
  const { provider: _s, ...snapshotOptions } = config.snapshots;
  const journal = await providers.get('journal')!.createJournal<M>(journalOptions);
  let snapshots: SnapshotStore<S>;
  let offsets: OffsetStore | undefined;
  try {
    const journalProvider = providers.get('journal')!;
    offsets = await journalProvider.createOffsetStore?.(journal as MessageJournal<unknown>, journalOptions);
    snapshots = await providers.get('snapshots')!.createSnapshotStore<S>(snapshotOptions);
  } catch (e) {
    await journal.close();
    throw e;
  }
  let closing: Promise<void> | undefined;
  return {
    journal,
    snapshots,
    offsets,
    close() {
      closing ??= Promise.allSettled([journal.close(), snapshots.close()]).then((results) => {
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      });
      return closing;
    },
  };
}

/**
 * Loads the provider a config names ("memory", "file", "lmdb", or a module exporting `provider`), for
 * tools that ask a provider about its options before opening anything. ConfigError when it cannot be
 * loaded.
 */
export async function loadProvider(name: string): Promise<PersistenceProvider> {
  const problems: string[] = [];
  const provider = await resolveProvider(name, problems, 'journal');
  if (!provider) throw new ConfigError(problems.map((p) => p.replace(/^journal\.provider: /, '')));
  return provider;
}

function checkShape(config: unknown): string[] {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    return ['the configuration must be an object { journal: {...}, snapshots: {...} }'];
  }
  const problems: string[] = [];
  for (const key of Object.keys(config)) {
    if (!(SECTIONS as readonly string[]).includes(key)) {
      problems.push(`unknown key "${key}"${didYouMean(key, SECTIONS)} (known: ${SECTIONS.join(', ')})`);
    }
  }
  for (const section of SECTIONS) {
    const value = (config as Record<string, unknown>)[section];
    if (value === undefined) {
      problems.push(
        `${section}: missing; e.g. { "provider": "file", "path": "./data/${section}" } ` +
          `or CAIRN_${section.toUpperCase()}_PROVIDER`,
      );
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problems.push(`${section}: must be an object with a "provider"`);
      continue;
    }
    const { provider, path: dir } = value as Record<string, unknown>;
    if (provider === undefined) {
      // A misspelt "provider" is the likely cause: name the key that is there instead.
      const misspelt = Object.keys(value).find((k) => didYouMean(k, ['provider']) !== '');
      problems.push(
        misspelt === undefined
          ? `${section}.provider: missing ("memory", "file", "lmdb", "postgres" or a module)`
          : `${section}.${misspelt}: unknown key (did you mean "provider"?); ${section}.provider is missing`,
      );
    } else if (typeof provider !== 'string' || provider.length === 0) {
      problems.push(`${section}.provider: must be a non-empty string`);
    }
    if (dir !== undefined && (typeof dir !== 'string' || dir.length === 0)) {
      problems.push(`${section}.path: must be a non-empty string`);
    }
  }
  return problems;
}

async function resolveProvider(
  name: string,
  problems: string[],
  section: Section,
): Promise<PersistenceProvider | undefined> {
  if (name === 'memory') return memoryProvider;
  const builtin = BUILTIN_PROVIDERS[name];
  const specifier = builtin ?? (isRelativeSpecifier(name) ? path.resolve(name) : name);
  let mod: { provider?: unknown };
  try {
    mod = (await import(specifier)) as { provider?: unknown };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const missing =
      (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') &&
      String((e as Error).message).includes(specifier);
    if (missing && builtin) {
      problems.push(
        `${section}.provider: "${name}" needs the package ${builtin}, which is not installed; run: npm install ${builtin}`,
      );
    } else if (missing) {
      problems.push(
        `${section}.provider: unknown provider "${name}": no built-in provider and no module of that name` +
          didYouMean(name, ['memory', ...Object.keys(BUILTIN_PROVIDERS)]),
      );
    } else {
      problems.push(`${section}.provider: loading "${specifier}" failed: ${(e as Error).message}`);
    }
    return undefined;
  }
  const provider = mod.provider as Partial<PersistenceProvider> | undefined;
  if (
    !provider ||
    typeof provider.name !== 'string' ||
    typeof provider.createJournal !== 'function' ||
    typeof provider.createSnapshotStore !== 'function'
  ) {
    problems.push(
      `${section}.provider: module "${specifier}" does not export a \`provider\` with name, createJournal and createSnapshotStore`,
    );
    return undefined;
  }
  return provider as PersistenceProvider;
}
