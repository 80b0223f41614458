import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  ConfigError,
  createPersistence,
  isPersistenceError,
  loadPersistenceConfig,
  MemoryJournalStore,
  MemorySnapshotData,
  type PersistenceConfig,
} from '@cairn/actor-core';
import { ACCOUNTS, runBankDemo } from '@cairn/example-bank-account';

/**
 * The bank-account app, unchanged, on every backend. The only difference between the runs is the
 * configuration file (configs/<backend>.json, the provider name); the data paths come from
 * CAIRN_JOURNAL_PATH / CAIRN_SNAPSHOTS_PATH pointing into a fresh temporary directory.
 */
const BACKENDS = ['memory', 'file', 'lmdb'] as const;

interface Outcome {
  readonly backend: string;
  readonly result: 'ok' | 'mismatch' | 'skipped';
  readonly detail: string;
}

async function configFor(backend: string, dataDir: string): Promise<PersistenceConfig> {
  const config = await loadPersistenceConfig({
    cwd: dataDir,
    env: {
      CAIRN_CONFIG: path.resolve(__dirname, '..', 'configs', `${backend}.json`),
      CAIRN_JOURNAL_PATH: 'journal',
      CAIRN_SNAPSHOTS_PATH: 'snapshots',
    },
  });
  if (backend !== 'memory') return config;
  // Memory lives as long as its store object: share one between the app's two systems, so its
  // restart has something to recover (across processes there would be nothing).
  return {
    journal: { ...config.journal, path: undefined, store: new MemoryJournalStore() },
    snapshots: { ...config.snapshots, path: undefined, store: new MemorySnapshotData() },
  };
}

/** Undefined when the backend's providers load; else why not (the package is not built or installed). */
async function unavailable(config: PersistenceConfig): Promise<string | undefined> {
  try {
    await (await createPersistence(config)).close();
    return undefined;
  } catch (e) {
    if (e instanceof ConfigError && e.problems.every((p) => /^(journal|snapshots)\.provider: /.test(p))) {
      return e.problems[0];
    }
    throw e;
  }
}

async function runOn(backend: string): Promise<Outcome> {
  const dataDir = await mkdtemp(path.join(tmpdir(), `cairn-swap-${backend}-`));
  try {
    const config = await configFor(backend, dataDir);
    const missing = await unavailable(config);
    if (missing !== undefined) {
      console.log(`[${backend}] skipped: ${missing}`);
      return { backend, result: 'skipped', detail: missing };
    }
    const { before, after, recoveries } = await runBankDemo(config, (line) => {
      if (line.startsWith('  ') && !line.includes('replayed')) return; // keep the per-command lines out
      console.log(`[${backend}] ${line.trim()}`);
    });
    const same = ACCOUNTS.every((name) => before[name] === after[name]);
    const balances = ACCOUNTS.map((name) => `${name} ${after[name]}`).join(', ');
    const fromSnapshot = recoveries.filter((r) => r.fromSnapshot !== undefined).length;
    return {
      backend,
      result: same ? 'ok' : 'mismatch',
      detail: `${balances}; ${fromSnapshot} of ${recoveries.length} recovered from a snapshot`,
    };
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const outcomes: Outcome[] = [];
  for (const backend of BACKENDS) outcomes.push(await runOn(backend));
  console.log('\nbackend  result    detail');
  for (const o of outcomes) console.log(`${o.backend.padEnd(8)} ${o.result.padEnd(9)} ${o.detail}`);
  const ran = outcomes.filter((o) => o.result !== 'skipped');
  const agree = ran.every((o) => o.detail === ran[0]?.detail);
  console.log(
    agree
      ? `every backend that ran (${ran.map((o) => o.backend).join(', ')}) ended with the same balances`
      : 'the backends DISAGREE',
  );
  return ran.every((o) => o.result === 'ok') && agree ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(isPersistenceError(e) ? `${e.name} (${e.code}): ${e.message}` : e);
    process.exitCode = 1;
  },
);
