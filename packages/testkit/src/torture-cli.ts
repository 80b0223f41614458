#!/usr/bin/env node
/**
 * cairn-torture: kill, corrupt and recover rounds with your own configuration's backends.
 *
 *   npx cairn-torture --config cairn.config.json --rounds 50 --seed 42
 *
 * Writes to a fresh temp directory (removed afterwards) unless --on-configured-paths; see
 * chooseTortureTarget. Exit code 0 when every invariant held, 1 when one broke, 2 on a usage error or a
 * refusal.
 */
import * as path from 'node:path';
import { loadPersistenceConfig, type PersistenceConfig } from '@cairn/actor-core';
import { Command, InvalidArgumentError } from 'commander';
import { runTorture, type TortureSummary } from './torture';
import { chooseTortureTarget, OtherDataError, type TortureTarget } from './torture-target';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number >= 1');
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number >= 0');
  return n;
}

function share(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('must be between 0 and 1');
  return n;
}

export function formatSummary(s: TortureSummary): string {
  const rows: Array<[string, string | number]> = [
    ['rounds', s.rounds],
    ['kills (SIGKILL)', s.kills],
    ['corruptions injected', s.corruptionsInjected],
    ['  detected', s.detected],
    ['  repaired (torn tail cut back)', s.repaired],
    ['  no effect (hit unused bytes)', s.noEffect],
    ['  reader crashed', s.readerCrashed],
    [
      s.durable
        ? 'acknowledged events lost (must be 0)'
        : 'acknowledged events lost (fsync off: not counted)',
      s.acknowledgedLost,
    ],
    ['invariant violations', s.violations.length],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = ['| check | count |', '|---|---|', ...rows.map(([k, v]) => `| ${k.padEnd(width)} | ${v} |`)];
  if (s.violations.length > 0) lines.push('', 'Violations:', ...s.violations.map((v) => `  - ${v}`));
  return lines.join('\n');
}

/** Runs cairn-torture with `argv` (node and script path first, as process.argv) and resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('cairn-torture')
    .description('Kill, corrupt and recover rounds against a Cairn persistence configuration.')
    .option(
      '--config <file>',
      'cairn.config.json to test (default: ./cairn.config.json and CAIRN_* variables)',
    )
    .option('--rounds <n>', 'rounds to run', positiveInt, 20)
    .option(
      '--seed <n>',
      'seed; the same seed reproduces the same kills and corruptions',
      nonNegativeInt,
      Date.now() % 2 ** 31,
    )
    .option('--corrupt-share <x>', 'share of rounds that also corrupt a copy of the data', share, 0.5)
    .option('--ids <n>', 'persistence ids written concurrently', positiveInt, 8)
    .option(
      '--mode <mode>',
      'journal: append through the journal API; actor: drive event-sourced actors',
      'journal',
    )
    .option('--scratch', 'write to a fresh temp directory (the default; kept for older scripts)')
    .option(
      '--on-configured-paths',
      "write to the config's own paths instead of a temp directory; refused when they hold other ids",
    )
    .option(
      '--allow-other-ids',
      'with --on-configured-paths: run even though the store holds ids that are not torture runs',
    )
    .option('--keep', 'keep what the run wrote (the temp directory, or its ids on the configured paths)')
    .exitOverride();
  try {
    program.parse(argv);
  } catch (e) {
    return (e as { exitCode?: number }).exitCode === 0 ? 0 : 2;
  }
  const opts = program.opts<{
    config?: string;
    rounds: number;
    seed: number;
    corruptShare: number;
    ids: number;
    mode: string;
    scratch?: boolean;
    onConfiguredPaths?: boolean;
    allowOtherIds?: boolean;
    keep?: boolean;
  }>();
  if (opts.mode !== 'journal' && opts.mode !== 'actor') {
    process.stderr.write(`--mode must be "journal" or "actor", got "${opts.mode}"\n`);
    return 2;
  }
  let config: PersistenceConfig;
  try {
    const env = opts.config ? { ...process.env, CAIRN_CONFIG: path.resolve(opts.config) } : process.env;
    config = await loadPersistenceConfig({ env });
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 2;
  }
  if (opts.scratch && opts.onConfiguredPaths) {
    process.stderr.write('give --scratch (the default) or --on-configured-paths, not both\n');
    return 2;
  }
  if (opts.allowOtherIds && !opts.onConfiguredPaths) {
    process.stderr.write('--allow-other-ids only applies with --on-configured-paths\n');
    return 2;
  }
  let target: TortureTarget;
  try {
    target = await chooseTortureTarget(config, {
      onConfiguredPaths: opts.onConfiguredPaths === true,
      allowOtherIds: opts.allowOtherIds === true,
    });
  } catch (e) {
    process.stderr.write(`cairn-torture: refused: ${(e as Error).message}\n`);
    if (e instanceof OtherDataError) return 2;
    throw e;
  }
  const tty = process.stderr.isTTY;
  process.stderr.write(
    `cairn-torture: ${opts.rounds} rounds, seed ${opts.seed}, ids ${target.prefix}-*, writing to ${target.description}\n`,
  );
  let summary: TortureSummary;
  try {
    summary = await runTortureOn(target, { ...opts, mode: opts.mode });
    if (tty) process.stderr.write('\n');
  } finally {
    if (opts.keep)
      process.stderr.write(`cairn-torture: kept what the run wrote (--keep): ${target.description}\n`);
    else process.stderr.write(`cairn-torture: cleaned up: ${await target.cleanup(opts.ids)}\n`);
  }
  process.stdout.write(`${formatSummary(summary)}\n`);
  return summary.violations.length > 0 || summary.acknowledgedLost > 0 ? 1 : 0;
}

function runTortureOn(
  target: TortureTarget,
  opts: { rounds: number; seed: number; corruptShare: number; ids: number; mode: 'journal' | 'actor' },
): Promise<TortureSummary> {
  const tty = process.stderr.isTTY;
  return runTorture({
    config: target.config,
    prefix: target.prefix,
    rounds: opts.rounds,
    seed: opts.seed,
    corruptShare: opts.corruptShare,
    ids: opts.ids,
    mode: opts.mode,
    onRound: (round, i) => {
      const done = i + 1;
      const width = 30;
      const filled = Math.round((done / opts.rounds) * width);
      const status = round.problems.length > 0 ? 'VIOLATION' : (round.outcome ?? 'ok');
      const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${opts.rounds} round seed ${round.seed}: ${round.acknowledged} acked, ${status}`;
      process.stderr.write(tty ? `\r${line}` : `${line}\n`);
    },
  });
}

/** Runs as the `cairn-torture` command: process.argv in, process exit code out. */
export function runAsBin(): void {
  main(process.argv).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`cairn-torture failed: ${(e as Error)?.stack ?? e}\n`);
      process.exit(2);
    },
  );
}

if (require.main === module) runAsBin();
