import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { PersistenceConfig } from '@cairn/actor-core';
import { PostgresMessageJournal } from '@cairn/postgres';
import {
  collect,
  runCrashRound,
  startThrowawayPostgres,
  type ThrowawayPostgres,
  verifyAcknowledged,
} from '@cairn/testkit';
import { TestSchemas, testServerUrl } from './pg-test-env';

const run = promisify(execFile);
const WRITER = path.join(__dirname, 'fixtures', 'shared-writer.js');
const schemas = new TestSchemas('mp');
afterAll(() => schemas.dropAll());

/** Runs `n` writer processes at once; resolves to each one's stdout lines. */
async function writers(
  schema: string,
  mode: 'free' | 'expect',
  n: number,
  count: number,
): Promise<string[][]> {
  const outputs = await Promise.all(
    Array.from({ length: n }, (_, child) =>
      run(process.execPath, [WRITER, testServerUrl(), schema, mode, String(child), String(count)], {
        timeout: 120_000,
      }),
    ),
  );
  return outputs.map(({ stdout }) => stdout.trim().split('\n'));
}

describe('several processes on one database', () => {
  it('processes appending to shared and distinct ids: every acknowledged event stored once, no gap, no duplicate', async () => {
    const schema = schemas.next();
    const outputs = await writers(schema, 'free', 4, 40);
    const acked = new Map<string, Map<number, string>>();
    for (const line of outputs.flat()) {
      const [kind, id, seq, message] = line.split(' ');
      expect(kind).toBe('ack');
      const byId = acked.get(id!) ?? new Map<number, string>();
      expect(byId.has(Number(seq))).toBe(false); // no sequenceNr acknowledged twice
      byId.set(Number(seq), message!);
      acked.set(id!, byId);
    }
    const journal = await PostgresMessageJournal.open<string>({ connectionString: testServerUrl(), schema });
    try {
      for (const [id, byId] of acked) {
        const stored = await collect(journal.readFrom(id, 1));
        expect(stored.map((e) => e.sequenceNr)).toEqual(stored.map((_, i) => i + 1));
        expect(stored).toHaveLength(byId.size);
        for (const e of stored) expect(e.message).toBe(byId.get(e.sequenceNr));
      }
      expect(acked.get('shared-0')!.size).toBe(4 * 40);
      expect(acked.get('own-3')!.size).toBe(40);
    } finally {
      await journal.close();
    }
  });

  it('processes racing with the same expectedSequenceNr: exactly one wins each number, the others see expected and actual', async () => {
    const schema = schemas.next();
    const outputs = await writers(schema, 'expect', 3, 30);
    const wins: number[] = [];
    let conflicts = 0;
    for (const line of outputs.flat()) {
      const [kind, a, b] = line.split(' ');
      if (kind === 'win') wins.push(Number(a));
      else {
        expect(kind).toBe('conflict');
        expect(Number(b)).toBeGreaterThan(Number(a)); // actual is past what the loser expected
        conflicts++;
      }
    }
    expect(wins.length + conflicts).toBe(3 * 30);
    expect([...wins].sort((x, y) => x - y)).toEqual(wins.map((_, i) => i + 1));
    const journal = await PostgresMessageJournal.open<string>({ connectionString: testServerUrl(), schema });
    try {
      expect(await journal.highestSequenceNr('race')).toBe(wins.length);
    } finally {
      await journal.close();
    }
  });

  it('a writer SIGKILLed mid-batch loses nothing it acknowledged (journal and actors)', async () => {
    // Journal rounds share one schema (each continues the last); the actor round, whose events have
    // another shape, gets its own.
    const journalSchema = schemas.next();
    let acknowledged = 0;
    const actorSchema = schemas.next();
    for (const [seed, mode] of [
      [31, 'journal'],
      [32, 'journal'],
      [33, 'actor'],
    ] as const) {
      const schema = mode === 'journal' ? journalSchema : actorSchema;
      const config: PersistenceConfig = {
        journal: { provider: 'postgres', connectionString: testServerUrl(), schema },
        snapshots: { provider: 'postgres', connectionString: testServerUrl(), schema },
      };
      // Killed 0.4-1.5 s after it is ready: long enough for acknowledged batches on a busy machine.
      const round = await runCrashRound({
        config,
        seed,
        ids: 8,
        killAfterMs: [400, 1500],
        snapshotEvery: 10,
        mode,
      });
      expect(round.signal).toBe('SIGKILL');
      expect(round.stderr).toBe('');
      acknowledged += round.acknowledged.events.size;
      const verdict = await verifyAcknowledged(config, round.acknowledged, { mode });
      expect(verdict.problems).toEqual([]);
      expect(verdict.corruptionDetected).toEqual([]);
      expect(verdict.lost).toBe(0);
    }
    expect(acknowledged).toBeGreaterThan(0);
  }, 120_000);
});

describe('a server crash during appends', () => {
  let server: ThrowawayPostgres;
  // A server of its own: an immediate restart cuts every connection, including other tests'.
  beforeAll(async () => {
    server = await startThrowawayPostgres();
  }, 60_000);
  afterAll(() => server?.stop());

  it('pg_ctl restart -m immediate: in-flight appends fail with StorageError, the pool recovers, nothing acknowledged is lost', async () => {
    const journal = await PostgresMessageJournal.open<string>({
      connectionString: server.url,
      schema: 'restart',
    });
    const acked = new Map<string, number[]>();
    const failures: unknown[] = [];
    let stop = false;
    const writer = async (id: string) => {
      const mine: number[] = [];
      acked.set(id, mine);
      while (!stop) {
        try {
          mine.push(await journal.append(id, `${id}:${mine.length}`));
        } catch (e) {
          failures.push(e);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    try {
      const running = Array.from({ length: 8 }, (_, i) => writer(`w-${i}`));
      await new Promise((r) => setTimeout(r, 300));
      await server.restart('immediate');
      const afterRestart = [...acked.values()].reduce((n, s) => n + s.length, 0);
      // Appends work again once the pool has replaced its dead connections.
      const deadline = Date.now() + 20_000;
      while (
        [...acked.values()].reduce((n, s) => n + s.length, 0) < afterRestart + 40 &&
        Date.now() < deadline
      ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      stop = true;
      await Promise.all(running);
      expect([...acked.values()].reduce((n, s) => n + s.length, 0)).toBeGreaterThanOrEqual(afterRestart + 40);
      expect(failures.length).toBeGreaterThan(0);
      for (const e of failures) expect(e).toMatchObject({ name: 'StorageError', code: 'ERR_STORAGE' });
    } finally {
      await journal.close();
    }
    const reader = await PostgresMessageJournal.open<string>({
      connectionString: server.url,
      schema: 'restart',
    });
    try {
      for (const [id, seqs] of acked) {
        const stored = await collect(reader.readFrom(id, 1));
        const byNr = new Map(stored.map((e) => [e.sequenceNr, e.message]));
        expect(stored.map((e) => e.sequenceNr)).toEqual(stored.map((_, i) => i + 1));
        for (const seq of seqs) expect(byNr.has(seq)).toBe(true);
      }
    } finally {
      await reader.close();
    }
  }, 90_000);
});
