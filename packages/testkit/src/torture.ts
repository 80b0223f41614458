import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { PersistenceConfig } from '@cairn/actor-core';
import { type CorruptionReport, injectRandomCorruption, seededRandom } from './corruption';
import { type Acknowledged, runCrashRound } from './crash-harness';

export interface TortureOptions {
  /** Journal and snapshot configuration with absolute paths (the data is written there). */
  readonly config: PersistenceConfig;
  readonly rounds: number;
  readonly seed: number;
  /** Share of rounds that also corrupt a copy of the data and check detection. Default 0.5. */
  readonly corruptShare?: number;
  /** Ids written concurrently. Default 8. */
  readonly ids?: number;
  /** Kill window in ms after the writer's first acknowledged write. Default [50, 400]. */
  readonly killAfterMs?: readonly [number, number];
  /** 'journal' (default): the writer appends to the journal; 'actor': it drives event-sourced actors. */
  readonly mode?: 'journal' | 'actor';
  /** Ids are named `${prefix}-${i}`. Default "torture". */
  readonly prefix?: string;
  /** Called after every round. */
  readonly onRound?: (round: TortureRound, index: number) => void;
}

export interface TortureRound {
  readonly seed: number;
  readonly acknowledged: number;
  readonly lost: number;
  /** This round's invariant violations: on the killed data, then on the corrupted copy (each counted in `violations`). */
  readonly problems: string[];
  readonly corruption?: CorruptionReport;
  /** 'detected' (a corruption error or report), 'no-effect' (all data intact), 'crashed' (the reader died), or undefined. */
  readonly outcome?: 'detected' | 'no-effect' | 'crashed';
  /** With outcome 'crashed': how the reader died (its signal, or its exit code and last stderr line). */
  readonly crash?: string;
  readonly repaired: boolean;
}

export interface TortureSummary {
  readonly rounds: number;
  readonly kills: number;
  readonly corruptionsInjected: number;
  readonly detected: number;
  readonly repaired: number;
  readonly noEffect: number;
  readonly readerCrashed: number;
  readonly acknowledgedLost: number;
  readonly violations: string[];
  readonly durable: boolean;
}

/** The reader child died instead of giving a verdict: how (see TortureRound.crash). */
interface Crashed {
  crashed: string;
}

function isCrashed(verdict: ChildVerdict | Crashed): verdict is Crashed {
  return 'crashed' in verdict;
}

const VERIFY_CHILD = path.join(__dirname, '..', 'dist', 'verify-child.js');

interface ChildVerdict {
  problems?: string[];
  lost?: number;
  checked?: number;
  corruptionDetected?: string[];
  reports?: Array<{ kind: string; message: string }>;
  error?: string;
}

function verifyInChild(
  config: PersistenceConfig,
  acked: Acknowledged,
  prefix: string,
  durable: boolean,
  mode: 'journal' | 'actor',
): Promise<ChildVerdict | Crashed> {
  const spec = { config, events: [...acked.events], snapshots: [...acked.snapshots], prefix, durable, mode };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [VERIFY_CHILD],
      { env: { ...process.env, CAIRN_VERIFY_SPEC: JSON.stringify(spec) }, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const line = stdout.trim().split('\n').pop();
        const last = stderr.trim().split('\n').pop()?.slice(0, 300) ?? '';
        const how = error?.signal ? `signal ${error.signal}` : `exit ${error?.code ?? 0}: ${last}`;
        if (error && (error.signal || !line)) return resolve({ crashed: how });
        try {
          resolve(JSON.parse(line ?? '') as ChildVerdict);
        } catch {
          resolve({ crashed: `${how} (its last line is not a verdict)` });
        }
      },
    );
  });
}

/** Whether the configuration promises that acknowledged writes survive a crash. */
export function isDurableConfig(config: PersistenceConfig): boolean {
  return config.journal.fsync !== false && config.journal.noSync !== true;
}

/**
 * Kill, corrupt and recover rounds against any provider's configuration. Each round runs the crash writer
 * in a child, SIGKILLs it, and checks the invariants on the real data (every acknowledged event present
 * when durable, contiguous, correct content, snapshots verify). Corrupting rounds then copy the data, flip,
 * zero or cut bytes in the copy, and check that the damage is detected (a corruption error, a repaired
 * torn tail or a skipped snapshot) and never served as data. Everything derives from `seed`.
 */
export async function runTorture(options: TortureOptions): Promise<TortureSummary> {
  const random = seededRandom(options.seed);
  const durable = isDurableConfig(options.config);
  const prefix = options.prefix ?? 'torture';
  const mode = options.mode ?? 'journal';
  const acked: Acknowledged = { events: new Map(), snapshots: new Map() };
  const violations: string[] = [];
  let kills = 0;
  let injected = 0;
  let detected = 0;
  let repaired = 0;
  let noEffect = 0;
  let readerCrashed = 0;
  let lostTotal = 0;

  for (let round = 0; round < options.rounds; round++) {
    const roundSeed = Math.floor(random() * 2 ** 31);
    const result = await runCrashRound({
      config: options.config,
      seed: roundSeed,
      ids: options.ids ?? 8,
      prefix,
      killAfterMs: options.killAfterMs,
      mode,
    });
    if (result.signal === 'SIGKILL') kills += 1;
    else
      violations.push(
        `round ${round}: the writer ended with ${result.signal ?? 'an exit'}: ${result.stderr.trim()}`,
      );
    for (const [i, seq] of result.acknowledged.events)
      acked.events.set(i, Math.max(acked.events.get(i) ?? 0, seq));
    for (const [i, seq] of result.acknowledged.snapshots)
      acked.snapshots.set(i, Math.max(acked.snapshots.get(i) ?? 0, seq));

    const verdict = await verifyInChild(options.config, acked, prefix, durable, mode);
    const problems = isCrashed(verdict)
      ? [`the reader crashed (${verdict.crashed}) on data that was only killed, not corrupted`]
      : verdict.error
        ? [verdict.error]
        : [
            ...(verdict.problems ?? []),
            ...(verdict.corruptionDetected ?? []).map((c) => `corruption after a kill: ${c}`),
          ];
    const lost = isCrashed(verdict) ? 0 : (verdict.lost ?? 0);
    lostTotal += lost;
    for (const p of problems) violations.push(`round ${round} (seed ${roundSeed}): ${p}`);
    let corruption: CorruptionReport | undefined;
    let outcome: TortureRound['outcome'];
    let crash: string | undefined;
    let wasRepaired = false;
    if (random() < (options.corruptShare ?? 0.5)) {
      const scratch = await mkdtemp(path.join(tmpdir(), 'cairn-torture-'));
      try {
        const copy = await copyData(options.config, scratch);
        const targetDir = random() < 0.75 ? copy.journal.path : copy.snapshots.path;
        corruption = targetDir ? await injectRandomCorruption(targetDir, random) : undefined;
        if (corruption) {
          injected += 1;
          const damaged = await verifyInChild(copy, acked, prefix, false, mode);
          if (isCrashed(damaged)) {
            readerCrashed += 1;
            outcome = 'crashed';
            crash = damaged.crashed;
          } else if (damaged.error) {
            violations.push(`round ${round} (seed ${roundSeed}) ${describe(corruption)}: ${damaged.error}`);
            problems.push(`${describe(corruption)}: ${damaged.error}`);
          } else {
            for (const p of damaged.problems ?? []) {
              violations.push(`round ${round} (seed ${roundSeed}) ${describe(corruption)}: ${p}`);
              problems.push(`${describe(corruption)}: ${p}`);
            }
            const reports = damaged.reports ?? [];
            wasRepaired = reports.some((r) => r.kind.includes('repaired'));
            const seen = (damaged.corruptionDetected?.length ?? 0) > 0 || reports.length > 0;
            if (seen) detected += 1;
            else noEffect += 1;
            if (wasRepaired) repaired += 1;
            outcome = seen ? 'detected' : 'no-effect';
          }
        }
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    }
    options.onRound?.(
      {
        seed: roundSeed,
        acknowledged: sum(result.acknowledged.events),
        lost,
        problems,
        corruption,
        outcome,
        ...(crash === undefined ? {} : { crash }),
        repaired: wasRepaired,
      },
      round,
    );
  }
  return {
    rounds: options.rounds,
    kills,
    corruptionsInjected: injected,
    detected,
    repaired,
    noEffect,
    readerCrashed,
    acknowledgedLost: durable ? lostTotal : 0,
    violations,
    durable,
  };
}

function sum(map: ReadonlyMap<number, number>): number {
  let n = 0;
  for (const v of map.values()) n += v;
  return n;
}

function describe(c: CorruptionReport): string {
  return `[${c.kind} ${c.file}${c.offset === undefined ? '' : ` @${c.offset}`}${c.length ? ` len ${c.length}` : ''}]`;
}

/** Copies the journal and snapshot directories into `scratch` and returns a config pointing at the copies. */
async function copyData(config: PersistenceConfig, scratch: string): Promise<PersistenceConfig> {
  const journalPath = config.journal.path;
  const snapshotsPath = config.snapshots.path;
  const mapped = new Map<string, string>();
  for (const [name, p] of [
    ['journal', journalPath],
    ['snapshots', snapshotsPath],
  ] as const) {
    if (!p || mapped.has(p)) continue;
    const target = path.join(scratch, name);
    await cp(p, target, { recursive: true, filter: (src) => !src.endsWith('.lock') });
    mapped.set(p, target);
  }
  return {
    journal: { ...config.journal, ...(journalPath ? { path: mapped.get(journalPath) } : {}) },
    snapshots: { ...config.snapshots, ...(snapshotsPath ? { path: mapped.get(snapshotsPath) } : {}) },
  };
}
