/**
 * One measurement cell: one workload on one system, in a process of its own so that every system starts
 * from a fresh heap (W3's heap growth means something), and a native crash or a leaked handle in one
 * system cannot spoil the others. Started by run.ts with `--expose-gc`; reports over the IPC channel.
 */

import { NotApplicableError, type SystemId, SystemUnavailableError } from './system';
import { SYSTEMS } from './system-registry';
import { WORKLOADS, type WorkloadId, type WorkloadResult } from './workloads';

export interface CellRequest {
  readonly workload: WorkloadId;
  readonly system: SystemId;
  readonly scale: number;
  readonly dir: string;
}

export type CellOutcome =
  | ({ readonly status: 'ok' } & WorkloadResult)
  | { readonly status: 'unavailable' | 'n/a' | 'failed'; readonly reason: string };

async function runCell(request: CellRequest): Promise<CellOutcome> {
  const system = SYSTEMS[request.system];
  const workload = WORKLOADS[request.workload];
  const reason = workload.notApplicable(system, request.scale);
  if (reason) return { status: 'n/a', reason };
  try {
    const result = await workload.run({ system, dir: request.dir, scale: request.scale });
    return { status: 'ok', ...result };
  } catch (error) {
    if (error instanceof SystemUnavailableError) return { status: 'unavailable', reason: error.message };
    if (error instanceof NotApplicableError) return { status: 'n/a', reason: error.message };
    const e = error as Error;
    return { status: 'failed', reason: `${e?.name ?? 'Error'}: ${e?.message ?? String(error)}` };
  }
}

function main(): void {
  const send = process.send?.bind(process);
  if (!send) {
    console.error('cell.js is started by run.js (it reports over an IPC channel)');
    process.exit(2);
  }
  const request = JSON.parse(process.argv[2] ?? '{}') as CellRequest;
  void runCell(request).then((outcome) => {
    // The runner waits for this process to exit on its own: one that lingers left something open.
    send(outcome, () => process.disconnect());
  });
}

main();
