import { spawn } from 'node:child_process';
import * as path from 'node:path';
import {
  ActorSystem,
  canLease,
  Effect,
  EventSourcedBehavior,
  LeaseHeldError,
  LeaseLostError,
} from '@cairn/actor-core';
import { PostgresMessageJournal, PostgresSnapshotStore } from '@cairn/postgres';
import { collect } from '@cairn/testkit';
import { fastTestServerUrl, sql, TestSchemas, testServerUrl } from './pg-test-env';

const schemas = new TestSchemas('lease');
afterAll(() => schemas.dropAll());

const open = (schema: string) =>
  PostgresMessageJournal.open<number>({ connectionString: fastTestServerUrl(), schema });

const account = (persistenceId: string) =>
  EventSourcedBehavior.create<number, number, number>({
    persistenceId,
    emptyState: 0,
    commandHandler: (_state, amount) => Effect.persist<number, number>(amount).thenReply((s) => s),
    eventHandler: (state, amount) => state + amount,
  });

describe('leases on the journal', () => {
  it('declares the capability; a second holder is refused naming the first, or waits for its release', async () => {
    const schema = schemas.next();
    const [a, b] = await Promise.all([open(schema), open(schema)]);
    try {
      expect(canLease(a)).toBe(true);
      const lease = await a.acquireLease('L', { holder: 'node-a' });
      expect(lease.epoch).toBe(1);
      const refused = await b.acquireLease('L', { holder: 'node-b' }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(LeaseHeldError);
      expect(refused).toMatchObject({ code: 'ERR_LEASE_HELD', persistenceId: 'L', holder: 'node-a' });
      expect((refused as Error).message).toMatch(/"L" is held exclusively by node-a until/);
      setTimeout(() => void lease.release(), 200);
      const taken = await b.acquireLease('L', { holder: 'node-b', waitMs: 10_000 });
      expect(taken.epoch).toBe(2);
      await taken.release();
      // A leased id with no events is not listed and has highest 0.
      expect(await b.highestSequenceNr('L')).toBe(0);
      expect(await collect(b.persistenceIds())).toEqual([]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('fencing: a holder whose lease passed to another fails its next append with LeaseLostError, writing nothing', async () => {
    const schema = schemas.next();
    const [a, b] = await Promise.all([open(schema), open(schema)]);
    try {
      await a.acquireLease('F', { holder: 'stalled' });
      await a.append('F', 1);
      // The holder stalls past its lifetime (simulated by ending the lease in the table) and another takes over.
      await sql(`UPDATE "${schema}".streams SET lease_until = now() - interval '1 second'`);
      const lease = await b.acquireLease('F', { holder: 'successor' });
      expect(lease.epoch).toBe(2);
      const [lost, other] = await Promise.allSettled([a.append('F', 2), a.append('G', 7)]);
      expect(lost.status).toBe('rejected');
      expect((lost as PromiseRejectedResult).reason).toBeInstanceOf(LeaseLostError);
      expect((lost as PromiseRejectedResult).reason.message).toMatch(/epoch 1\) passed to successor/);
      expect(other.status).toBe('fulfilled'); // other ids of the same commit are unaffected
      expect(await b.append('F', 3, { expectedSequenceNr: 1 })).toBe(2);
      expect((await collect(b.readFrom('F', 1))).map((e) => e.message)).toEqual([1, 3]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('close() releases the leases it holds', async () => {
    const schema = schemas.next();
    const a = await open(schema);
    await a.acquireLease('C');
    await a.close();
    const b = await open(schema);
    try {
      expect((await b.acquireLease('C')).epoch).toBe(2);
    } finally {
      await b.close();
    }
  });
});

describe('exclusive actors', () => {
  it('spawn(behavior, { exclusive: true }) in a second system is refused while the first runs it, then recovers its events', async () => {
    const schema = schemas.next();
    const systems = await Promise.all(
      [0, 1].map(async () =>
        ActorSystem.create({
          persistence: {
            journal: await open(schema),
            snapshots: await PostgresSnapshotStore.open({ connectionString: fastTestServerUrl(), schema }),
          },
          closePersistence: true,
        }),
      ),
    );
    const [first, second] = systems as [ActorSystem, ActorSystem];
    try {
      const ref = await first.spawn(account('acct-1'), { exclusive: true });
      expect(await ref.ask(10)).toBe(10);
      await expect(second.spawn(account('acct-1'), { exclusive: true })).rejects.toBeInstanceOf(
        LeaseHeldError,
      );
      expect(second.lookup('acct-1')).toBeUndefined();
      // Waiting: granted once the first stops its actor.
      const waiting = second.spawn(account('acct-1'), { exclusive: true, leaseWaitMs: 10_000 });
      await new Promise((r) => setTimeout(r, 150));
      await ref.stop();
      const moved = await waiting;
      expect(await moved.ask(5)).toBe(15);
    } finally {
      await Promise.all(systems.map((s) => s.terminate()));
    }
  });

  it('a second process spawning a leased id is refused with the holder named', async () => {
    const schema = schemas.next();
    const child = spawn(
      process.execPath,
      [path.join(__dirname, 'fixtures', 'exclusive-holder.js'), testServerUrl(), schema, 'acct-x'],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          if (d.toString().includes('ready')) resolve();
        });
        child.on('exit', (code) => reject(new Error(`holder exited ${code}: ${stderr}`)));
      });
      const system = await ActorSystem.create({
        persistence: {
          journal: { provider: 'postgres', connectionString: fastTestServerUrl(), schema },
          snapshots: { provider: 'postgres', connectionString: fastTestServerUrl(), schema },
        },
      });
      try {
        const refused = await system.spawn(account('acct-x'), { exclusive: true }).catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(LeaseHeldError);
        expect((refused as LeaseHeldError).holder).toContain(`:${child.pid}:`);
        // Without `exclusive` nothing is asked: any process may serve the id (the entity model).
        const shared = await system.spawn(account('acct-x'));
        expect(await shared.ask(1)).toBe(6);
      } finally {
        await system.terminate();
      }
    } finally {
      child.stdin.end();
      await new Promise((r) => child.once('exit', r));
    }
  });
});
