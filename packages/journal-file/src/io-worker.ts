/*
 * The module the journal's IoPool threads load (as dist/io-worker.js): @cairn/snapshot's standard file
 * operations plus the journal's own (segment appends, scans, sealing).
 */
import { ioOperations, ioWorkerModule } from '@cairn/snapshot';
import { journalOperations } from './journal-operations';

export = ioWorkerModule({ ...ioOperations, ...journalOperations });
