/*
 * The module every IoPool thread loads by default (as dist/io-worker.js): the standard file operations.
 * Loaded by piscina with require(), so the exports object is the table of handlers by name.
 */
import { ioOperations, ioWorkerModule } from './io-operations';

export = ioWorkerModule(ioOperations);
