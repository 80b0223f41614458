import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ActorSystem, type ActorSystemOptions, isPersistenceError } from '@cairn/actor-core';
import { ACCOUNT, type AccountCommand, account, type Balance } from './bank';

export interface BankServerOptions {
  /** Where accounts persist (a configuration or opened stores), as for ActorSystem.create. */
  readonly persistence: ActorSystemOptions['persistence'];
  /** Default 0: any free port. The server listens on 127.0.0.1 only. */
  readonly port?: number;
  /** Entities idle this long are passivated. Default 30 000 ms. */
  readonly passivateAfterMs?: number;
  /** At most this many accounts live in memory. Default 10 000. */
  readonly maxActiveEntities?: number;
}

export interface BankServer {
  readonly url: string;
  readonly system: ActorSystem;
  /** Stops taking requests, lets those in flight finish, then terminates the actor system. */
  close(): Promise<void>;
}

const ACCOUNT_PATH = /^\/accounts\/([A-Za-z0-9_-]{1,64})(\/deposit)?$/;
const MAX_BODY_BYTES = 4096;

/**
 * A bank over HTTP, without a framework:
 * - `POST /accounts/:id/deposit` with `{"amount": <integer cents > 0>}` -> `{"id", "balance"}` once the
 *   deposit is durable;
 * - `GET /accounts/:id` -> `{"id", "balance"}` (0 for an account never used);
 * - `GET /metrics` -> the actor system's metrics (active entities, passivations, conflict reloads, ...).
 * Each account is an entity: its actor starts on its first request and is passivated when idle.
 */
export async function startBankServer(options: BankServerOptions): Promise<BankServer> {
  const system = await ActorSystem.create({
    persistence: options.persistence,
    passivateAfterMs: options.passivateAfterMs ?? 30_000,
    maxActiveEntities: options.maxActiveEntities ?? 10_000,
  });
  system.registerEntity(ACCOUNT, account);
  const server = createServer((req, res) => {
    handle(system, req, res).catch((error: unknown) => reply(res, 500, { error: messageOf(error) }));
  });
  server.keepAliveTimeout = 5000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
    });
  } catch (e) {
    await system.terminate();
    throw e;
  }
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    system,
    close: () => {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await system.terminate();
      })();
      return closing;
    },
  };
}

async function handle(system: ActorSystem, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  if (url.pathname === '/metrics' && req.method === 'GET') {
    reply(res, 200, system.metrics());
    return;
  }
  const match = ACCOUNT_PATH.exec(url.pathname);
  if (!match) {
    reply(res, 404, { error: `no route ${req.method} ${url.pathname}` });
    return;
  }
  const id = match[1]!;
  const deposit = match[2] !== undefined;
  if (req.method !== (deposit ? 'POST' : 'GET')) {
    res.setHeader('allow', deposit ? 'POST' : 'GET');
    reply(res, 405, { error: `${req.method} is not allowed here` });
    return;
  }
  let command: AccountCommand = { type: 'balance' };
  if (deposit) {
    const amount = amountOf(await readBody(req));
    if (typeof amount === 'string') {
      reply(res, 400, { error: amount });
      return;
    }
    command = { type: 'deposit', amount };
  }
  try {
    const balance = await system.entityRef<AccountCommand, Balance>(ACCOUNT, id).ask(command);
    reply(res, 200, { id, balance });
  } catch (error) {
    // A deposit refused twice by a concurrent writer of the same account stored nothing: the client may retry.
    if (isPersistenceError(error, 'ERR_SEQUENCE_CONFLICT')) reply(res, 409, { error: messageOf(error) });
    else if (
      isPersistenceError(error, 'ERR_STASH_OVERFLOW') ||
      isPersistenceError(error, 'ERR_ASK_TIMEOUT')
    ) {
      reply(res, 503, { error: messageOf(error) });
    } else throw error;
  }
}

function amountOf(body: string): number | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return 'the body must be JSON: {"amount": <integer cents > 0>}';
  }
  const amount = (parsed as { amount?: unknown } | null)?.amount;
  if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount <= 0) {
    return `amount must be an integer number of cents > 0, got ${JSON.stringify(amount)}`;
  }
  return amount;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > MAX_BODY_BYTES) req.destroy(new Error('request body too large'));
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
