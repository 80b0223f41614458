import * as path from 'node:path';
import { ActorSystem, loadPersistenceConfig } from '@cairn/actor-core';
import { type AccountReply, bankAccount } from './bank';

/**
 * Deposits 1 into account "crash" on the configured backend, forever, with `window` asks in flight,
 * printing `ack <balance>` once each reply arrived (so once its event was durable). The crash test
 * SIGKILLs it mid-stream and checks that every acknowledged deposit survived.
 * Usage: node dist/crash-writer.js [window=16]
 */
async function main(): Promise<void> {
  const window = Number(process.argv[2] ?? 16);
  const persistence = await loadPersistenceConfig({ cwd: path.resolve(__dirname, '..') });
  const system = await ActorSystem.create({ persistence });
  const ref = await system.spawn(bankAccount('crash'));
  const depositForever = async (): Promise<never> => {
    for (;;) {
      const reply = await ref.ask<AccountReply>({ type: 'deposit', amount: 1 });
      // stdout on a pipe is synchronous on Linux: a printed ack reached the parent before any kill.
      if (reply.ok) process.stdout.write(`ack ${reply.balance}\n`);
    }
  };
  process.stdout.write('ready\n');
  await Promise.all(Array.from({ length: window }, depositForever));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
