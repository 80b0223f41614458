/*
 * The module the threads of a shared IoPool load (as dist/shared-io-worker.js). One pool serves every file
 * journal and snapshot store of the process, and each of them has its own worker module (the journal's
 * adds its operations to the standard ones), so a task names its module: the thread loads that module
 * once, on its first task for it, and runs the named operation of it. Only modules that IoPool.shared was
 * given (absolute paths of built files it checked exist) are ever named.
 */

import type { SharedIoTask } from './io-pool';

type Handler = (args: unknown) => Promise<unknown>;

const modules = new Map<string, Record<string, Handler>>();

function dispatch(task: SharedIoTask): Promise<unknown> {
  let handlers = modules.get(task.module);
  if (!handlers) {
    handlers = require(task.module) as Record<string, Handler>;
    modules.set(task.module, handlers);
  }
  const handler = handlers[task.op];
  if (typeof handler !== 'function' || task.op === 'default') {
    throw new TypeError(`the IO worker module ${task.module} has no operation "${task.op}"`);
  }
  return handler(task.args);
}

export = {
  dispatch,
  // piscina preloads each thread's handler under the name "default" (see ioWorkerModule); tasks of a
  // shared pool always go to dispatch.
  default: async () => {
    throw new TypeError('a shared IoPool task goes to dispatch');
  },
};
