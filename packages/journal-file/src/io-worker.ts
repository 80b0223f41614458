/*
 * The module the journal's IoPool threads load (as dist/io-worker.js): @cairn/snapshot's standard file
 * operations plus the journal's own (segment appends, scans, sealing).
 */
// The module, not the package index: a thread then loads in ~20 ms instead of ~110 (no snapshot store,
// serializers or actor runtime), which every open pays once.
import { ioOperations, ioWorkerModule } from '@cairn/snapshot/io-operations';
import { journalOperations } from './journal-operations';

export = ioWorkerModule({ ...ioOperations, ...journalOperations });
