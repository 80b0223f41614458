import * as path from 'node:path';
import {
  type ActorRef,
  ActorSystem,
  canQuery,
  createPersistence,
  isPersistenceError,
  loadPersistenceConfig,
  type Persistence,
  type PersistenceConfig,
} from '@cairn/actor-core';
import { runProjection } from '@cairn/projection';
import { ACCOUNTS, type AccountCommand, type AccountEvent, account, BANK_TAG, operation } from './accounts';
import { ReadModelFile } from './read-model';

/**
 * `npm run start -w examples/read-model [-- --ops N --data DIR]`: bank accounts (event-sourced actors)
 * and, beside them in the same process, a projection that keeps balances per account and deposits per
 * day in a read model file. Each run performs N more operations (default 200), waits until the read
 * model has caught up with the journal, prints it and checks it against the accounts' own balances.
 * Killed at any moment and started again, it resumes from the projection's last saved offset.
 */
async function main(argv: readonly string[]): Promise<number> {
  const ops = Number(argValue(argv, '--ops') ?? 200);
  const data = argValue(argv, '--data');
  const config = data
    ? {
        journal: { provider: 'lmdb', path: path.join(data, 'journal') },
        snapshots: { provider: 'lmdb', path: path.join(data, 'journal') },
      }
    : await loadPersistenceConfig({ cwd: path.resolve(__dirname, '..') });
  const persistence = await openWhenUnlocked(config);
  const journal = persistence.journal;
  if (!canQuery(journal) || !persistence.offsets) {
    await persistence.close();
    throw new Error(`the ${config.journal.provider} provider offers no event queries or offsets`);
  }
  const model = await ReadModelFile.open(
    path.join(path.dirname(String(config.journal.path)), 'read-model.json'),
  );
  const projection = await runProjection<unknown, AccountEvent>({
    name: 'bank-read-model',
    query: journal,
    source: { tag: BANK_TAG },
    offsets: persistence.offsets,
    checkpointEvery: 10,
    handler: (event) => model.handle(event),
  });
  const system = await ActorSystem.create({ persistence });
  try {
    const refs = new Map<string, ActorRef<AccountCommand>>();
    for (const name of ACCOUNTS) refs.set(name, await system.spawn(account(name)));
    const start = Number(argValue(argv, '--first') ?? 0);
    for (let i = start; i < start + ops; i++) {
      const { account: name, command } = operation(i);
      const balance = await refs.get(name)!.ask<number>(command);
      console.log(`op ${i} ${name} ${command.type} -> ${balance}`);
    }
    // The read model trails the journal by a few milliseconds: wait until it has everything.
    const head = await journal.headOffset();
    while (head !== undefined && projection.metrics().lastOffset !== head) {
      if (projection.state !== 'running') throw projection.error ?? new Error('the projection stopped');
      await new Promise((r) => setTimeout(r, 10));
    }
    const mismatches: string[] = [];
    for (const name of ACCOUNTS) {
      const actual = await refs.get(name)!.ask<number>({ type: 'balance' });
      const projected = model.data.balances[`account-${name}`] ?? 0;
      console.log(
        `balance ${name}: ${projected}${projected === actual ? '' : ` (the account says ${actual})`}`,
      );
      if (projected !== actual) mismatches.push(name);
    }
    for (const [day, d] of Object.entries(model.data.depositsPerDay)) {
      console.log(`deposits ${day}: ${d.count} totalling ${d.amount}`);
    }
    console.log(
      mismatches.length === 0 ? 'read model matches the accounts' : `MISMATCH: ${mismatches.join(', ')}`,
    );
    return mismatches.length === 0 ? 0 : 1;
  } finally {
    await projection.stop();
    await system.terminate();
    await persistence.close();
  }
}

function argValue(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** Opens the stores, waiting (up to 15 s) for the lock of a killed earlier run to go stale. */
async function openWhenUnlocked(config: PersistenceConfig): Promise<Persistence> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      return await createPersistence(config);
    } catch (e) {
      if (!isPersistenceError(e, 'ERR_JOURNAL_LOCKED') || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(isPersistenceError(e) ? `${e.name} (${e.code}): ${e.message}` : e);
    process.exitCode = 1;
  },
);
