import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { PersistenceConfig, PersistenceReport } from '@cairn/actor-core';
import { runCrashRound, runTorture, verifyAcknowledged } from '@cairn/testkit';

/**
 * The crash and torture kit, run briefly against each disk backend with its durable defaults: a writer
 * child is SIGKILLed mid-stream (mid-batch and mid-snapshot included, at seeded moments), then every
 * acknowledged event must be there, contiguous, with the content written, and snapshots must verify.
 */
const backends: Array<[string, (dir: string) => PersistenceConfig]> = [
  [
    'lmdb',
    (dir) => ({
      journal: { provider: 'lmdb', path: path.join(dir, 'lmdb') },
      snapshots: { provider: 'lmdb', path: path.join(dir, 'lmdb') },
    }),
  ],
  [
    'file',
    (dir) => ({
      journal: { provider: 'file', path: path.join(dir, 'journal') },
      snapshots: { provider: 'file', path: path.join(dir, 'snapshots') },
    }),
  ],
];

// Each case spawns and SIGKILLs several child processes: on a shared 2-core machine a round can take
// seconds, so the cases get more than jest's default time.
const CRASH_CASE_TIMEOUT_MS = 90_000;

describe.each(backends)('%s backend', (_name, configFor) => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cairn-crash-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it(
    'keeps every acknowledged event and snapshot across three SIGKILLs',
    async () => {
      const config = configFor(dir);
      let acknowledged = 0;
      for (const seed of [11, 12, 13]) {
        const round = await runCrashRound({
          config,
          seed,
          ids: 6,
          killAfterMs: [40, 250],
          snapshotEvery: 10,
        });
        expect(round.signal).toBe('SIGKILL');
        expect(round.stderr).toBe('');
        const reports: PersistenceReport[] = [];
        const verdict = await verifyAcknowledged(config, round.acknowledged, { reports });
        expect(verdict.problems).toEqual([]);
        expect(verdict.corruptionDetected).toEqual([]);
        expect(verdict.lost).toBe(0);
        acknowledged += [...round.acknowledged.events.values()].length;
      }
      expect(acknowledged).toBeGreaterThan(0);
    },
    CRASH_CASE_TIMEOUT_MS,
  );

  it(
    'actor level: the runtime recovers exactly the fold of the acknowledged events after SIGKILLs',
    async () => {
      const config = configFor(dir);
      for (const seed of [21, 22]) {
        const round = await runCrashRound({
          config,
          seed,
          ids: 5,
          killAfterMs: [60, 250],
          snapshotEvery: 7,
          mode: 'actor',
        });
        expect(round.signal).toBe('SIGKILL');
        expect(round.stderr).toBe('');
        expect(round.acknowledged.events.size).toBeGreaterThan(0);
        const verdict = await verifyAcknowledged(config, round.acknowledged, { mode: 'actor' });
        expect(verdict.problems).toEqual([]);
        expect(verdict.corruptionDetected).toEqual([]);
      }
    },
    CRASH_CASE_TIMEOUT_MS,
  );

  it(
    'torture: kills and corrupted copies never serve wrong data or lose acknowledged events',
    async () => {
      const summary = await runTorture({
        config: configFor(dir),
        rounds: 3,
        seed: 42,
        ids: 4,
        corruptShare: 1,
        killAfterMs: [30, 200],
      });
      expect(summary.violations).toEqual([]);
      expect(summary.acknowledgedLost).toBe(0);
      expect(summary.kills).toBe(3);
      expect(summary.corruptionsInjected).toBeGreaterThan(0);
    },
    CRASH_CASE_TIMEOUT_MS,
  );
});
