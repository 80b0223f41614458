import type { CellOutcome } from './cell';
import type { SystemId } from './system';
import { INDEXED_PEER, RAW_PEER, SYSTEMS } from './system-registry';
import type { Figure, WorkloadId } from './workloads';

/** One cell as the runner recorded it. */
export type CellRecord = {
  readonly workload: WorkloadId;
  readonly system: SystemId;
  /** Wall time of the whole cell (setup, measurement, verification), seconds. */
  readonly cellSeconds: number;
} & (CellOutcome | { readonly status: 'timeout' | 'crashed'; readonly reason: string });

type OkRecord = Extract<CellRecord, { status: 'ok' }>;

function find(records: readonly CellRecord[], workload: WorkloadId, system: SystemId): OkRecord | undefined {
  const found = records.find((r) => r.workload === workload && r.system === system);
  return found?.status === 'ok' ? found : undefined;
}

/** 1234567 -> "1.23M", 45678 -> "45.7k", 812.4 -> "812". */
export function formatCount(value: number): string {
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (value >= 1e5) return `${Math.round(value / 1e3)}k`;
  if (value >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  if (value >= 100) return `${Math.round(value)}`;
  return value.toPrecision(3);
}

function formatMs(ms: number | undefined): string {
  if (ms === undefined) return '';
  return ms >= 10 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(2)} ms`;
}

function formatFigure(figure: Figure): string {
  return `${formatCount(figure.value)} ${figure.unit}`;
}

function ratio(mine: readonly Figure[], theirs: readonly Figure[] | undefined): string {
  if (!theirs) return '';
  return mine
    .map((f, k) => {
      const other = theirs[k];
      return other && other.unit === f.unit ? `${(f.value / other.value).toFixed(2)}x` : '';
    })
    .filter((s) => s !== '')
    .join(' / ');
}

/**
 * Workloads measured against the same system's figure of another workload in the run: the runtime's
 * overhead (W6 / W1), catch-up against replay (W8 / W3), the cost of tags (W1T / W1).
 */
const OWN_BASELINE: Partial<Record<WorkloadId, WorkloadId>> = { W6: 'W1', W8: 'W3', W1T: 'W1' };

/**
 * The markdown table: one row per workload and system that applies. Ratios divide this row's figures by
 * the raw peer of the same engine (Cairn providers only) and by better-sqlite3 FULL. W6 has no peer rows,
 * so its ratios are taken against the peers' W1 (the same work without the runtime), marked "(W1)".
 */
export function renderTable(records: readonly CellRecord[]): string {
  const lines = [
    '| workload | system | figure | p50 | p99 | vs raw peer | vs better-sqlite3 FULL | notes |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const record of records) {
    if (record.status === 'n/a') continue;
    const system = SYSTEMS[record.system];
    const cells = [record.workload, system.label];
    if (record.status !== 'ok') {
      cells.push(record.status, '', '', '', '', tableCell(record.reason));
      lines.push(`| ${cells.join(' | ')} |`);
      continue;
    }
    const compareWith = record.workload === 'W6' ? 'W1' : record.workload;
    const suffix = record.workload === 'W6' ? ' (W1)' : '';
    const peer = RAW_PEER[record.system];
    const vsPeer = peer ? ratio(record.figures, find(records, compareWith, peer)?.figures) : '';
    const vsSqlite =
      record.system === 'sqlite-full'
        ? ''
        : ratio(record.figures, find(records, compareWith, 'sqlite-full')?.figures);
    const notes = [...record.notes];
    if (record.heapGrowthMiB !== undefined) {
      notes.unshift(
        `heap +${record.heapGrowthMiB.toFixed(1)} MiB, RSS +${(record.rssGrowthMiB ?? 0).toFixed(1)} MiB`,
      );
    }
    const indexedPeer = INDEXED_PEER[record.system];
    const indexedFigures = indexedPeer && find(records, compareWith, indexedPeer)?.figures;
    if (indexedPeer && indexedFigures) {
      notes.unshift(`${ratio(record.figures, indexedFigures)}${suffix} ${SYSTEMS[indexedPeer].label}`);
    }
    const own = OWN_BASELINE[record.workload];
    if (own) {
      const baseline = find(records, own, record.system);
      if (baseline) notes.unshift(`${ratio(record.figures.slice(0, 1), baseline.figures)} own ${own}`);
    }
    if (!system.durable) notes.push('not durable');
    cells.push(
      record.figures.map(formatFigure).join('; '),
      formatMs(record.p50Ms),
      formatMs(record.p99Ms),
      vsPeer && `${vsPeer}${suffix}`,
      vsSqlite && `${vsSqlite}${suffix}`,
      tableCell(notes.join('; ')),
    );
    lines.push(`| ${cells.join(' | ')} |`);
  }
  const skipped = new Map<string, string[]>();
  for (const record of records) {
    if (record.status !== 'n/a') continue;
    const key = `${record.workload}: ${record.reason}`;
    skipped.set(key, [...(skipped.get(key) ?? []), SYSTEMS[record.system].label]);
  }
  if (skipped.size > 0) {
    lines.push('', 'Not run:');
    for (const [key, labels] of skipped) {
      const [workload, ...reason] = key.split(': ');
      lines.push(`- ${workload} on ${labels.join(', ')}: ${reason.join(': ')}`);
    }
  }
  return lines.join('\n');
}

/** One table cell: pipes escaped, whitespace collapsed, long reasons cut (the results file keeps them whole). */
function tableCell(text: string, limit = 240): string {
  const flat = text.replace(/\s+/g, ' ').replace(/\|/g, '\\|');
  return flat.length > limit ? `${flat.slice(0, limit - 1)}…` : flat;
}
