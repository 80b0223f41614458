import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Client, type ServerProcess, startServer } from './http-client';

const dirs: string[] = [];
const servers: ServerProcess[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-http-bank-'));
  dirs.push(dir);
  return dir;
}
async function start(dataDir: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const server = await startServer(dataDir, env);
  servers.push(server);
  return server;
}
async function metrics(client: Client, server: ServerProcess): Promise<Record<string, number>> {
  return (await client.call(`${server.url}/metrics`, 'GET')).body;
}
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('examples/http-bank', () => {
  it('1,000 concurrent deposits over 100 accounts: exact balances after passivation, a restart and a SIGKILL', async () => {
    const data = tempDir();
    const client = new Client();
    try {
      const expected = new Map<string, number>();
      const depositAll = async (server: ServerProcess, count: number, salt: number) => {
        const results = await Promise.all(
          Array.from({ length: count }, (_, i) => {
            const id = `acct-${i % 100}`;
            const amount = ((i * 7 + salt) % 13) + 1;
            expected.set(id, (expected.get(id) ?? 0) + amount);
            return client.deposit(server.url, id, amount);
          }),
        );
        // One server: nobody else writes, so no deposit ever conflicts.
        expect(results.filter((r) => r.conflicts > 0)).toEqual([]);
      };
      const checkAll = async (server: ServerProcess) => {
        const balances = await Promise.all([...expected.keys()].map((id) => client.balance(server.url, id)));
        expect(balances).toEqual([...expected.values()]);
      };

      let server = await start(data, { PASSIVATE_AFTER_MS: '300' });
      await depositAll(server, 1000, 0);
      expect(expected.size).toBe(100);
      // Idle accounts are passivated; their balances come back by recovery.
      await until(
        async () => (await metrics(client, server)).activeEntities === 0,
        'every account passivated',
      );
      // Each account started at least once and every incarnation was passivated (on a slow machine an
      // account may go idle, and come back, between its own deposits).
      const after = await metrics(client, server);
      expect(after.entityActivations).toBeGreaterThanOrEqual(100);
      expect(after.entityPassivations).toBe(after.entityActivations);
      await checkAll(server);
      expect(
        (await client.call(`${server.url}/accounts/acct-1/deposit`, 'POST', { amount: -5 })).status,
      ).toBe(400);
      expect((await client.call(`${server.url}/accounts/acct-1`, 'POST', {})).status).toBe(405);

      // A clean restart.
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
      server = await start(data);
      await checkAll(server);

      // Every acknowledged deposit survives a SIGKILL.
      await depositAll(server, 300, 5);
      server.child.kill('SIGKILL');
      expect(await server.exited).toBe('SIGKILL');
      server = await start(data);
      await checkAll(server);
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    } finally {
      client.close();
    }
  }, 120_000);

  it('two server processes on one LMDB environment, deposits to the same accounts on both: exact balances', async () => {
    const data = tempDir();
    const client = new Client();
    try {
      // The environment exists before two processes open it at once.
      const first = await start(data, { PASSIVATE_AFTER_MS: '300' });
      const second = await start(data, { PASSIVATE_AFTER_MS: '300' });
      const expected = new Map<string, number>();
      const results = await Promise.all(
        Array.from({ length: 600 }, (_, i) => {
          const id = `shared-${i % 10}`;
          const amount = (i % 5) + 1;
          expected.set(id, (expected.get(id) ?? 0) + amount);
          // Every account gets deposits through both servers, interleaved.
          return client.deposit((Math.floor(i / 10) % 2 === 0 ? first : second).url, id, amount);
        }),
      );
      expect(results).toHaveLength(600);
      // The processes did get in each other's way: their entities reloaded from storage and retried.
      const reloads =
        (await metrics(client, first)).conflictReloads! + (await metrics(client, second)).conflictReloads!;
      expect(reloads).toBeGreaterThan(0);
      // Once passivated, both processes recover every account from storage: exact on both.
      for (const server of [first, second]) {
        await until(
          async () => (await metrics(client, server)).activeEntities === 0,
          'every account passivated',
        );
        const balances = await Promise.all([...expected.keys()].map((id) => client.balance(server.url, id)));
        expect(balances).toEqual([...expected.values()]);
      }
      // Both hold shared-0 live now. A deposit on the first makes the second's state stale; the second's
      // next deposit conflicts, reloads and lands after it, without the client seeing the conflict.
      const before = await metrics(client, second);
      const viaFirst = await client.deposit(first.url, 'shared-0', 1000);
      expect(viaFirst).toEqual({ balance: expected.get('shared-0')! + 1000, conflicts: 0 });
      const viaSecond = await client.deposit(second.url, 'shared-0', 1);
      expect(viaSecond).toEqual({ balance: expected.get('shared-0')! + 1001, conflicts: 0 });
      expect((await metrics(client, second)).conflictReloads).toBe(before.conflictReloads! + 1);
      for (const server of [first, second]) {
        server.child.kill('SIGTERM');
        expect(await server.exited).toBe(0);
      }
    } finally {
      client.close();
    }
  }, 120_000);
});
