/**
 * Runs verifyAcknowledged in a child process, so a backend that crashes on corrupt data (a native
 * library reading a damaged page) takes down only this child. Input: JSON in CAIRN_VERIFY_SPEC; output:
 * one JSON line on stdout.
 */
import type { PersistenceConfig, PersistenceReport } from '@cairn/actor-core';
import { verifyAcknowledged } from './crash-harness';

interface VerifySpec {
  readonly config: PersistenceConfig;
  readonly events: Array<[number, number]>;
  readonly snapshots: Array<[number, number]>;
  readonly prefix: string;
  readonly durable: boolean;
  readonly mode: 'journal' | 'actor';
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.env.CAIRN_VERIFY_SPEC ?? '') as VerifySpec;
  const reports: PersistenceReport[] = [];
  const result = await verifyAcknowledged(
    spec.config,
    { events: new Map(spec.events), snapshots: new Map(spec.snapshots) },
    { prefix: spec.prefix, durable: spec.durable, reports, mode: spec.mode },
  );
  process.stdout.write(
    `${JSON.stringify({ ...result, reports: reports.map((r) => ({ kind: r.kind, message: r.message })) })}\n`,
  );
}

main().catch((e: unknown) => {
  process.stdout.write(`${JSON.stringify({ error: (e as Error)?.stack ?? String(e) })}\n`);
  process.exit(2);
});
