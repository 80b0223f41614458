import { ActorSystem, EventSourcedBehavior } from '@cairn/actor-core';
import { PostgresMessageJournal, PostgresSnapshotStore } from '@cairn/postgres';
import { fastTestServerUrl, TestSchemas } from './pg-test-env';

const schemas = new TestSchemas('entity');
afterAll(() => schemas.dropAll());

const account = (id: string) =>
  EventSourcedBehavior.create<number, number, number, number>({
    persistenceId: `account-${id}`,
    emptyState: 0,
    commandHandler: (_state, amount, effect) =>
      amount === 0 ? effect.reply(_state) : effect.persist(amount).thenReply((s) => s),
    eventHandler: (state, amount) => state + amount,
    snapshotEvery: 7,
  });

/** A system on its own journal and snapshot store (its own pool), as a second process would have. */
async function node(schema: string, passivateAfterMs = 120_000): Promise<ActorSystem> {
  const connectionString = fastTestServerUrl();
  const system = await ActorSystem.create({
    persistence: {
      journal: await PostgresMessageJournal.open({ connectionString, schema }),
      snapshots: await PostgresSnapshotStore.open({ connectionString, schema }),
    },
    closePersistence: true,
    passivateAfterMs,
  });
  system.registerEntity('account', account);
  return system;
}

describe('entities on postgres, served by two systems at once', () => {
  it('deposits through both to the same accounts: every one lands once, balances exact', async () => {
    const schema = schemas.next();
    const [a, b] = [await node(schema, 200), await node(schema, 200)];
    try {
      const expected = new Map<string, number>();
      const deposit = async (system: ActorSystem, id: string, amount: number): Promise<void> => {
        // A client retries the rare deposit that conflicted twice in a row (nothing was stored).
        for (let attempt = 0; ; attempt++) {
          try {
            await system.entityRef<number, number>('account', id).ask(amount);
            return;
          } catch (e) {
            if ((e as { code?: string }).code !== 'ERR_SEQUENCE_CONFLICT' || attempt > 20) throw e;
          }
        }
      };
      await Promise.all(
        Array.from({ length: 300 }, (_, i) => {
          const id = String(i % 5);
          const amount = (i % 9) + 1;
          expected.set(id, (expected.get(id) ?? 0) + amount);
          return deposit(Math.floor(i / 5) % 2 === 0 ? a : b, id, amount);
        }),
      );
      expect(a.metrics().conflictReloads + b.metrics().conflictReloads).toBeGreaterThan(0);
      // Passivated, each recovers from storage (snapshots + events) and sees every deposit.
      for (const system of [a, b]) {
        const deadline = Date.now() + 10_000;
        while (system.metrics().activeEntities > 0 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        const balances = await Promise.all(
          [...expected.keys()].map((id) => system.entityRef<number, number>('account', id).ask(0)),
        );
        expect(balances).toEqual([...expected.values()]);
      }
    } finally {
      await a.terminate();
      await b.terminate();
    }
  });
});
