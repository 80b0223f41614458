/**
 * The soak: long SIGKILL torture per backend, then open/append/close cycles that must leave nothing behind.
 * Not part of `npm test` (it runs for hours at full size).
 *
 *   npm run soak -- --rounds 1000                    # every backend, 1,000 torture rounds and 1,000 cycles each
 *   npm run soak -- --rounds 20 --cycles 50 --backends lmdb --seed 7
 *
 * Torture: the rounds of each backend are split between journal mode (the writer appends through the
 * journal) and actor mode (it drives event-sourced actors), each with the corruption share; every
 * `--chunk` rounds start on a fresh data directory so a round's verification does not grow with the
 * whole run. Cycles: open a journal and a snapshot store by config, append, read back, save and load a
 * snapshot, close; after a warm-up the process's file descriptors, threads, active handles (timers,
 * workers, sockets) and heap (after a full GC) must not grow.
 *
 * Prints a tally per backend and exits 1 on any acknowledged loss, invariant violation or growth; 2 on a
 * usage error. A reader process that died on a deliberately damaged copy is counted and listed, not failed:
 * LMDB keeps no page checksums, and some damage to its page structure trips an assertion inside LMDB that
 * aborts the process natively (see the journal-lmdb README); Cairn types every damage LMDB reports.
 */
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createPersistence, type PersistenceConfig } from '@cairn/actor-core';
import {
  captureResources,
  findLeakedResources,
  runTorture,
  type TortureRound,
  type TortureSummary,
} from '@cairn/testkit';
import { Command, InvalidArgumentError } from 'commander';

const BACKENDS = ['file', 'lmdb'] as const;
type Backend = (typeof BACKENDS)[number];

interface SoakOptions {
  rounds: number;
  cycles: number;
  seed: number;
  chunk: number;
  corruptShare: number;
  backends: Backend[];
  heapSlackMiB: number;
  /** No torture chunk starts after this time (ms since epoch): --minutes on a shared machine. */
  tortureUntil: number;
}

interface ModeTally {
  rounds: number;
  kills: number;
  corruptionsInjected: number;
  detected: number;
  repaired: number;
  noEffect: number;
  readerCrashed: number;
  acknowledgedLost: number;
  violations: string[];
}

interface CycleTally {
  cycles: number;
  fds: [number, number];
  threads: [number, number];
  heapMiB: [number, number];
  growth: string[];
}

function wholeNumber(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min)
      throw new InvalidArgumentError(`must be a whole number >= ${min}`);
    return n;
  };
}

function emptyTally(): ModeTally {
  return {
    rounds: 0,
    kills: 0,
    corruptionsInjected: 0,
    detected: 0,
    repaired: 0,
    noEffect: 0,
    readerCrashed: 0,
    acknowledgedLost: 0,
    violations: [],
  };
}

function add(t: ModeTally, s: TortureSummary, label: string): void {
  t.rounds += s.rounds;
  t.kills += s.kills;
  t.corruptionsInjected += s.corruptionsInjected;
  t.detected += s.detected;
  t.repaired += s.repaired;
  t.noEffect += s.noEffect;
  t.readerCrashed += s.readerCrashed;
  t.acknowledgedLost += s.acknowledgedLost;
  for (const v of s.violations) t.violations.push(`${label} ${v}`);
}

function describeDamage(c: TortureRound['corruption']): string {
  return c
    ? `${c.kind} of ${path.basename(path.dirname(c.file))}/${path.basename(c.file)} at ${c.offset}`
    : 'no damage';
}

function configFor(backend: Backend, dir: string): PersistenceConfig {
  return {
    journal: { provider: backend, path: path.join(dir, 'journal') },
    snapshots: { provider: backend, path: path.join(dir, 'snapshots') },
  };
}

/** Mixes the run's seed with the backend, mode and chunk, so every chunk has its own reproducible seed. */
function chunkSeed(seed: number, backend: Backend, mode: string, chunk: number): number {
  let h = seed >>> 0;
  for (const ch of `${backend}/${mode}/${chunk}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return h % 2 ** 31;
}

async function torture(
  backend: Backend,
  mode: 'journal' | 'actor',
  rounds: number,
  o: SoakOptions,
): Promise<ModeTally> {
  const tally = emptyTally();
  let started = Date.now();
  for (let chunk = 0; tally.rounds < rounds; chunk++) {
    if (Date.now() >= o.tortureUntil) {
      log(`${backend}/${mode}: the time budget is spent; ${tally.rounds} of ${rounds} rounds ran`);
      break;
    }
    const n = Math.min(o.chunk, rounds - tally.rounds);
    const seed = chunkSeed(o.seed, backend, mode, chunk);
    const dir = await mkdtemp(path.join(tmpdir(), `cairn-soak-${backend}-`));
    try {
      const summary = await runTorture({
        config: configFor(backend, dir),
        rounds: n,
        seed,
        mode,
        corruptShare: o.corruptShare,
        onRound: (round, i) => {
          if (round.problems.length > 0 || round.outcome === 'crashed') {
            log(
              `${backend}/${mode} chunk seed ${seed} round ${i}: ${round.outcome ?? ''}` +
                `${round.crash ? ` (${round.crash}) after ${describeDamage(round.corruption)}` : ''} ${round.problems.join('; ')}`,
            );
          }
        },
      });
      add(tally, summary, `${backend}/${mode} chunk seed ${seed}:`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const now = Date.now();
    log(
      `${backend}/${mode}: ${tally.rounds}/${rounds} rounds (chunk of ${n} with seed ${seed} in ${((now - started) / 1000).toFixed(0)} s), ` +
        `lost ${tally.acknowledgedLost}, violations ${tally.violations.length}, reader crashed ${tally.readerCrashed}`,
    );
    started = now;
  }
  return tally;
}

function threadCount(): number {
  try {
    return readdirSync('/proc/self/task').length;
  } catch {
    return Number.NaN;
  }
}

function fdCount(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return Number.NaN;
  }
}

async function settledHeapMiB(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return process.memoryUsage().heapUsed / 2 ** 20;
}

async function cycle(backend: Backend, dir: string, i: number): Promise<void> {
  const persistence = await createPersistence(configFor(backend, dir));
  try {
    const id = `soak-${i % 50}`;
    const seq = await persistence.journal.append(id, { cycle: i, payload: 'x'.repeat(200) });
    let read = 0;
    for await (const entry of persistence.journal.readFrom(id, seq)) {
      read += 1;
      if ((entry.message as { cycle: number }).cycle !== i)
        throw new Error(`cycle ${i}: read back another event`);
    }
    if (read !== 1) throw new Error(`cycle ${i}: read ${read} events back, expected 1`);
    await persistence.snapshots.save(id, seq, { cycle: i });
    const snap = await persistence.snapshots.loadLatest(id);
    if ((snap?.state as { cycle?: number } | undefined)?.cycle !== i)
      throw new Error(`cycle ${i}: snapshot not read back`);
    if (i % 100 === 99) await persistence.snapshots.prune(id, 1);
  } finally {
    await persistence.close();
  }
}

async function cycles(backend: Backend, o: SoakOptions): Promise<CycleTally> {
  const dir = await mkdtemp(path.join(tmpdir(), `cairn-soak-cycles-${backend}-`));
  const warmUp = Math.min(50, Math.floor(o.cycles / 10));
  try {
    for (let i = 0; i < warmUp; i++) await cycle(backend, dir, i);
    const before = captureResources();
    const fds0 = fdCount();
    const threads0 = threadCount();
    const heap0 = await settledHeapMiB();
    for (let i = warmUp; i < o.cycles; i++) {
      await cycle(backend, dir, i);
      if ((i + 1) % 250 === 0)
        log(`${backend} cycles: ${i + 1}/${o.cycles}, fds ${fdCount()}, threads ${threadCount()}`);
    }
    const growth = await findLeakedResources(before, 5000);
    const fds1 = fdCount();
    const threads1 = threadCount();
    const heap1 = await settledHeapMiB();
    if (threads1 > threads0) growth.push(`threads grew from ${threads0} to ${threads1}`);
    if (heap1 - heap0 > o.heapSlackMiB) {
      growth.push(
        `heap grew from ${heap0.toFixed(1)} MiB to ${heap1.toFixed(1)} MiB (slack ${o.heapSlackMiB} MiB)`,
      );
    }
    return {
      cycles: o.cycles,
      fds: [fds0, fds1],
      threads: [threads0, threads1],
      heapMiB: [heap0, heap1],
      growth,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function log(line: string): void {
  process.stderr.write(`[${new Date().toISOString()}] ${line}\n`);
}

function table(rows: Array<[string, string | number]>): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return ['| check | count |', '|---|---|', ...rows.map(([k, v]) => `| ${k.padEnd(width)} | ${v} |`)].join(
    '\n',
  );
}

function report(backend: Backend, modes: Record<string, ModeTally>, c: CycleTally | undefined): string {
  const rows: Array<[string, string | number]> = [];
  for (const [mode, t] of Object.entries(modes)) {
    rows.push(
      [`${mode}: rounds`, t.rounds],
      [`${mode}: kills (SIGKILL)`, t.kills],
      [`${mode}: corruptions injected`, t.corruptionsInjected],
      [`${mode}:   detected`, t.detected],
      [`${mode}:   repaired (torn tail cut back)`, t.repaired],
      [`${mode}:   no effect (hit unused bytes)`, t.noEffect],
      [`${mode}:   reader process died on the damaged copy`, t.readerCrashed],
      [`${mode}: acknowledged events lost (must be 0)`, t.acknowledgedLost],
      [`${mode}: invariant violations (must be 0)`, t.violations.length],
    );
  }
  if (c) {
    rows.push(
      ['open/append/close cycles', c.cycles],
      ['  fds after warm-up -> end', `${c.fds[0]} -> ${c.fds[1]}`],
      ['  threads after warm-up -> end', `${c.threads[0]} -> ${c.threads[1]}`],
      [
        '  heap MiB after warm-up -> end (after GC)',
        `${c.heapMiB[0].toFixed(1)} -> ${c.heapMiB[1].toFixed(1)}`,
      ],
      ['  growth findings (must be 0)', c.growth.length],
    );
  }
  const lines = [`## ${backend}`, '', table(rows)];
  const problems = [...Object.values(modes).flatMap((t) => t.violations), ...(c?.growth ?? [])];
  if (problems.length > 0) lines.push('', 'Findings:', ...problems.map((p) => `  - ${p}`));
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('soak')
    .description('Long SIGKILL torture and open/close leak cycles per backend.')
    .option(
      '--rounds <n>',
      'torture rounds per backend, split between journal and actor mode',
      wholeNumber(0),
      1000,
    )
    .option('--cycles <n>', 'open/append/close cycles per backend (default: --rounds)', wholeNumber(0))
    .option(
      '--seed <n>',
      'seed; the same seed reproduces the same kills and corruptions',
      wholeNumber(0),
      Date.now() % 2 ** 31,
    )
    .option('--chunk <n>', 'rounds per fresh data directory', wholeNumber(1), 50)
    .option('--corrupt-share <x>', 'share of rounds that also corrupt a copy of the data', Number, 0.5)
    .option('--backends <list>', 'comma-separated backends', 'file,lmdb')
    .option('--heap-slack <MiB>', 'heap growth tolerated over the cycles', Number, 8)
    .option(
      '--minutes <n>',
      'time budget for the torture rounds of each backend and mode: no chunk starts after it (the tally says how many ran)',
      wholeNumber(1),
    )
    .exitOverride();
  try {
    program.parse(argv);
  } catch (e) {
    return (e as { exitCode?: number }).exitCode === 0 ? 0 : 2;
  }
  const raw = program.opts<{
    rounds: number;
    cycles?: number;
    seed: number;
    chunk: number;
    corruptShare: number;
    backends: string;
    heapSlack: number;
    minutes?: number;
  }>();
  const backends = raw.backends.split(',').map((b) => b.trim());
  const unknown = backends.filter((b) => !(BACKENDS as readonly string[]).includes(b));
  if (unknown.length > 0 || !(raw.corruptShare >= 0 && raw.corruptShare <= 1)) {
    process.stderr.write(
      unknown.length > 0
        ? `unknown backend(s) ${unknown.join(', ')}; known: ${BACKENDS.join(', ')}\n`
        : '--corrupt-share must be between 0 and 1\n',
    );
    return 2;
  }
  if (!(globalThis as { gc?: unknown }).gc) log('note: run node with --expose-gc for a settled heap figure');
  const o: SoakOptions = {
    rounds: raw.rounds,
    cycles: raw.cycles ?? raw.rounds,
    seed: raw.seed,
    chunk: raw.chunk,
    corruptShare: raw.corruptShare,
    backends: backends as Backend[],
    heapSlackMiB: raw.heapSlack,
    tortureUntil: Number.POSITIVE_INFINITY,
  };
  log(
    `soak: ${o.rounds} rounds and ${o.cycles} cycles per backend (${o.backends.join(', ')}), seed ${o.seed}`,
  );
  let failed = false;
  for (const backend of o.backends) {
    const journalRounds = Math.ceil(o.rounds / 2);
    const budget = (raw.minutes ?? 0) * 60_000;
    o.tortureUntil = raw.minutes === undefined ? Number.POSITIVE_INFINITY : Date.now() + budget;
    const journal = await torture(backend, 'journal', journalRounds, o);
    if (raw.minutes !== undefined) o.tortureUntil = Date.now() + budget;
    const actor = await torture(backend, 'actor', o.rounds - journalRounds, o);
    const modes: Record<string, ModeTally> = { journal, actor };
    const c = o.cycles > 0 ? await cycles(backend, o) : undefined;
    process.stdout.write(`${report(backend, modes, c)}\n\n`);
    for (const t of Object.values(modes)) {
      if (t.acknowledgedLost > 0 || t.violations.length > 0) failed = true;
    }
    if (c && c.growth.length > 0) failed = true;
  }
  process.stdout.write(`soak ${failed ? 'FAILED' : 'passed'} (seed ${o.seed})\n`);
  return failed ? 1 : 0;
}

main(process.argv).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`soak failed: ${(e as Error)?.stack ?? e}\n`);
    process.exit(2);
  },
);
