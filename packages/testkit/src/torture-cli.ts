#!/usr/bin/env node
/**
 * cairn-torture: kill, corrupt and recover rounds against your own configuration.
 *
 *   npx cairn-torture --config cairn.config.json --rounds 50 --seed 42
 *
 * Exit code 0 when every invariant held, 1 when one broke, 2 on a usage error.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadPersistenceConfig, type PersistenceConfig } from '@cairn/actor-core';
import { Command, InvalidArgumentError } from 'commander';
import { runTorture, type TortureSummary } from './torture';

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

async function main(argv: string[]): Promise<number> {
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
    .option('--scratch', 'ignore the paths in the config and write to a fresh temp directory')
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
  if (opts.scratch) {
    const dir = await mkdtemp(path.join(tmpdir(), 'cairn-torture-data-'));
    config = {
      journal: { ...config.journal, path: path.join(dir, 'journal') },
      snapshots: { ...config.snapshots, path: path.join(dir, 'snapshots') },
    };
  }
  const tty = process.stderr.isTTY;
  process.stderr.write(
    `cairn-torture: ${opts.rounds} rounds, seed ${opts.seed}, journal ${config.journal.provider}\n`,
  );
  const summary = await runTorture({
    config,
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
  if (tty) process.stderr.write('\n');
  process.stdout.write(`${formatSummary(summary)}\n`);
  return summary.violations.length > 0 || summary.acknowledgedLost > 0 ? 1 : 0;
}

if (require.main === module) {
  main(process.argv).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`cairn-torture failed: ${(e as Error)?.stack ?? e}\n`);
      process.exit(2);
    },
  );
}
