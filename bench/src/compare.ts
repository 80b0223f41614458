/**
 * Before/after rows for BENCHMARKS.md's optimisation log: the figures of two results files side by side.
 *
 *   node bench/dist/compare.js bench/results/<before>.json bench/results/<after>.json
 *
 * Absolute figures from two runs on a shared machine differ by its load as much as by the change; the
 * ratio columns (to the raw peer, to better-sqlite3 FULL, each taken within its own run) are the ones to
 * trust, and the command prints them for both runs.
 */
import { readFile } from 'node:fs/promises';
import { type CellRecord, formatCount } from './results-table';
import { RAW_PEER, SYSTEMS } from './system-registry';

interface ResultsFile {
  readonly startedAt: string;
  readonly records: readonly CellRecord[];
}

type Ok = Extract<CellRecord, { status: 'ok' }>;

function okRecord(records: readonly CellRecord[], workload: string, system: string): Ok | undefined {
  const found = records.find((r) => r.workload === workload && r.system === system);
  return found?.status === 'ok' ? found : undefined;
}

function primary(record: Ok | undefined): number | undefined {
  return record?.figures[0]?.value;
}

function ratioTo(records: readonly CellRecord[], record: Ok, peer: string | undefined): string {
  if (!peer) return '';
  const mine = primary(record);
  const theirs = primary(okRecord(records, record.workload, peer));
  return mine !== undefined && theirs !== undefined ? `${(mine / theirs).toFixed(2)}x` : '';
}

export function compareRuns(before: ResultsFile, after: ResultsFile): string {
  const lines = [
    `| workload | system | before (${before.startedAt.slice(0, 16)}) | after (${after.startedAt.slice(0, 16)}) | change | vs raw peer before -> after | vs better-sqlite3 FULL before -> after |`,
    '|---|---|---|---|---|---|---|',
  ];
  for (const now of after.records) {
    if (now.status !== 'ok') continue;
    const then = okRecord(before.records, now.workload, now.system);
    const a = primary(then);
    const b = primary(now);
    if (b === undefined) continue;
    const unit = now.figures[0]?.unit ?? '';
    const peer = RAW_PEER[now.system];
    const change = a === undefined ? '' : `${b >= a ? '+' : ''}${(((b - a) / a) * 100).toFixed(0)}%`;
    const arrow = (x: string, y: string): string => (x || y ? `${x || '-'} -> ${y || '-'}` : '');
    lines.push(
      `| ${now.workload} | ${SYSTEMS[now.system].label} | ${a === undefined ? '-' : `${formatCount(a)} ${unit}`} | ` +
        `${formatCount(b)} ${unit} | ${change} | ` +
        `${arrow(then ? ratioTo(before.records, then, peer) : '', ratioTo(after.records, now, peer))} | ` +
        `${now.system === 'sqlite-full' ? '' : arrow(then ? ratioTo(before.records, then, 'sqlite-full') : '', ratioTo(after.records, now, 'sqlite-full'))} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const [beforePath, afterPath] = process.argv.slice(2);
  if (!beforePath || !afterPath) {
    console.error('usage: node bench/dist/compare.js <before.json> <after.json>');
    process.exit(2);
  }
  const load = async (file: string): Promise<ResultsFile> =>
    JSON.parse(await readFile(file, 'utf8')) as ResultsFile;
  console.log(compareRuns(await load(beforePath), await load(afterPath)));
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
