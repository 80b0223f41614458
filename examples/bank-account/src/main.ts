import * as path from 'node:path';
import {
  ConfigError,
  describeConfigOrigin,
  isPersistenceError,
  loadPersistenceConfig,
  MemoryJournalStore,
  MemorySnapshotData,
  type PersistenceConfig,
  persistenceConfigOrigin,
} from '@cairn/actor-core';
import { ACCOUNTS, runBankDemo } from './bank';

/**
 * `npm start`: the bank on the backend named by examples/bank-account/cairn.config.json (or CAIRN_*
 * environment variables). When a configured backend package cannot be loaded yet, it runs on the
 * memory provider instead and says so.
 */
async function main(): Promise<number> {
  const exampleDir = path.resolve(__dirname, '..');
  const origin = describeConfigOrigin(await persistenceConfigOrigin({ cwd: exampleDir }), process.cwd());
  const persistence = await usableConfig(exampleDir, origin);
  const result = await runBankDemo(persistence, (line) => console.log(line));
  return ACCOUNTS.every((name) => result.before[name] === result.after[name]) ? 0 : 1;
}

/**
 * The configuration if its providers load (loadPersistenceConfig loads them to check their options),
 * else an in-memory one kept for both runs.
 */
async function usableConfig(exampleDir: string, origin: string): Promise<PersistenceConfig> {
  try {
    const config = await loadPersistenceConfig({ cwd: exampleDir });
    console.log(`backend: journal "${config.journal.provider}" at ${config.journal.path ?? '(memory)'}`);
    console.log(
      `         snapshots "${config.snapshots.provider}" at ${config.snapshots.path ?? '(memory)'}`,
    );
    console.log(`         chosen by ${origin}`);
    console.log(
      '         (set CAIRN_JOURNAL_PROVIDER / CAIRN_SNAPSHOTS_PROVIDER, e.g. to lmdb, to run on another backend)',
    );
    return config;
  } catch (e) {
    const unloadable =
      e instanceof ConfigError && e.problems.every((p) => /^(journal|snapshots)\.provider: /.test(p));
    if (!unloadable) throw e;
    console.log(`the backend chosen by ${origin} cannot be loaded yet, falling back to "memory":`);
    for (const problem of e.problems) console.log(`  ${problem}`);
    // One store for both runs, so the restart has something to recover within this process.
    return {
      journal: { provider: 'memory', store: new MemoryJournalStore() },
      snapshots: { provider: 'memory', store: new MemorySnapshotData() },
    };
  }
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
