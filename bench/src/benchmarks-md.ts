/**
 * Puts a run's table into BENCHMARKS.md ("## Latest table"), with the command, date, scale and machine
 * load that produced it, so the document always says where its figures come from.
 *
 *   node bench/dist/benchmarks-md.js bench/results/<timestamp>.json [--note "text"] [--file BENCHMARKS.md]
 */
import { readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

interface ResultsFile {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly arguments: readonly string[];
  readonly scale: number;
  readonly machine: {
    readonly node: string;
    readonly cpus: number;
    readonly cpuModel: string;
    readonly loadAverageAtStart: readonly number[];
  };
  readonly table: string;
}

const START = '## Latest table';
const END = '## Optimisation log';

export function latestTableSection(results: ResultsFile, note: string | undefined): string {
  const seconds = (Date.parse(results.finishedAt) - Date.parse(results.startedAt)) / 1000;
  // Where the JSON went does not change a figure; everything else on the command line may.
  const args = results.arguments.filter((arg, k, all) => arg !== '--results' && all[k - 1] !== '--results');
  const { machine } = results;
  const lines = [
    START,
    '',
    `Command: \`npm run bench -- ${args.join(' ')}\` (scale ${results.scale}${
      results.scale === 1 ? ', the workload table sizes' : ''
    }), ${results.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${Math.round(seconds)} s in all.`,
    `Machine: ${machine.cpus} x ${machine.cpuModel}, node ${machine.node}, load average at start ` +
      `${machine.loadAverageAtStart.join(' / ')} (1 / 5 / 15 min).`,
  ];
  if (note) lines.push('', note);
  lines.push('', results.table, '');
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      note: { type: 'string' },
      file: { type: 'string', default: path.join(__dirname, '..', '..', 'BENCHMARKS.md') },
    },
  });
  const resultsPath = positionals[0];
  if (!resultsPath) {
    console.error(
      'usage: node bench/dist/benchmarks-md.js <results.json> [--note "text"] [--file BENCHMARKS.md]',
    );
    process.exit(2);
  }
  const results = JSON.parse(await readFile(resultsPath, 'utf8')) as ResultsFile;
  const document = await readFile(values.file, 'utf8');
  const start = document.indexOf(START);
  const end = document.indexOf(END);
  if (start < 0 || end < start) {
    throw new Error(`${values.file} needs a "${START}" section followed by "${END}"`);
  }
  const updated = `${document.slice(0, start)}${latestTableSection(results, values.note)}\n${document.slice(end)}`;
  await writeFile(values.file, updated);
  console.error(`${values.file}: latest table from ${resultsPath}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
