/**
 * One application node: an ActorSystem on the shared PostgreSQL serving account entities. Deposits to the
 * accounts this node serves (spread by id) and to the shared account, then reports to the parent what the
 * accounts acknowledged. argv: <index> <nodes> <schema>; CAIRN_PG_URL or the PG* variables name the server.
 */
import { ActorSystem } from '@cairn/actor-core';
import {
  account,
  accountsOf,
  amountOf,
  DEPOSITS_PER_ACCOUNT,
  SHARED_ACCOUNT,
  SHARED_DEPOSITS_PER_NODE,
} from './accounts';

export interface NodeReport {
  readonly type: 'node-done';
  readonly name: string;
  readonly pid: number;
  readonly accounts: number;
  /** Deposits acknowledged, and their sum, per account. */
  readonly deposited: Record<string, { deposits: number; sum: number }>;
  readonly conflictReloads: number;
  readonly retries: number;
}

async function main(): Promise<void> {
  const [index, nodes, schema] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]!];
  const name = `node-${String.fromCharCode(97 + index)}`;
  const connection = process.env.CAIRN_PG_URL ? { connectionString: process.env.CAIRN_PG_URL } : {};
  const system = await ActorSystem.create({
    persistence: {
      journal: { provider: 'postgres', schema, ...connection },
      snapshots: { provider: 'postgres', schema, ...connection },
    },
    // The default for entities: a persist refused because the other node wrote the account meanwhile
    // makes the entity read the account again from PostgreSQL and handle the command once more.
    onConflict: 'reload-and-retry',
  });
  system.registerEntity('account', account);
  const deposited: NodeReport['deposited'] = {};
  let retries = 0;
  const deposit = async (id: string, amount: number): Promise<void> => {
    // Two nodes racing on one account: the entity reloads and retries; the rare command that loses the
    // race again is retried here (nothing was stored for it).
    for (let attempt = 0; ; attempt++) {
      try {
        await system.entityRef<number, number>('account', id).ask(amount);
        const d = deposited[id] ?? { deposits: 0, sum: 0 };
        deposited[id] = { deposits: d.deposits + 1, sum: d.sum + amount };
        return;
      } catch (e) {
        if ((e as { code?: string }).code !== 'ERR_SEQUENCE_CONFLICT' || attempt >= 20) throw e;
        retries++;
      }
    }
  };
  try {
    // Both nodes start depositing together (the parent says go once both are up), so that their
    // deposits to the shared account race.
    process.send!({ type: 'node-ready' });
    await new Promise<void>((resolve) => process.once('message', () => resolve()));
    const mine = accountsOf(index, nodes);
    await Promise.all([
      ...mine.map(async (id) => {
        for (let k = 0; k < DEPOSITS_PER_ACCOUNT; k++) await deposit(id, amountOf(k));
      }),
      (async () => {
        for (let k = 0; k < SHARED_DEPOSITS_PER_NODE; k++) await deposit(SHARED_ACCOUNT, amountOf(k + index));
      })(),
    ]);
    const report: NodeReport = {
      type: 'node-done',
      name,
      pid: process.pid,
      accounts: mine.length,
      deposited,
      conflictReloads: system.metrics().conflictReloads,
      retries,
    };
    process.send!(report);
  } finally {
    await system.terminate();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
