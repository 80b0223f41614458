import { type ChildProcess, spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import * as path from 'node:path';

const MAIN = path.join(__dirname, '..', 'dist', 'main.js');

/** A server process running the built example. */
export interface ServerProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly exited: Promise<number | NodeJS.Signals>;
  stderr(): string;
}

/** Starts `node dist/main.js` on LMDB at `dataDir`, on a free port; resolves once it listens. */
export async function startServer(dataDir: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [MAIN], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PORT: '0',
      CAIRN_JOURNAL_PROVIDER: 'lmdb',
      CAIRN_JOURNAL_PATH: dataDir,
      CAIRN_SNAPSHOTS_PROVIDER: 'lmdb',
      CAIRN_SNAPSHOTS_PATH: dataDir,
      ...env,
    },
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | NodeJS.Signals>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal ?? code ?? -1)),
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      out += chunk;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    void exited.then((how) => reject(new Error(`server exited (${how}) before listening: ${stderr}`)));
  });
  return { child, url, exited, stderr: () => stderr };
}

/** A JSON answer of the server: `{ id, balance }`, `{ error }` or the metrics. */
export type Answer = Record<string, number> & { readonly balance: number; readonly error?: string };

/** A loopback HTTP client with a bounded pool of keep-alive connections. */
export class Client {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });

  async call(url: string, method: 'GET' | 'POST', body?: unknown): Promise<{ status: number; body: Answer }> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          agent: this.agent,
          headers: text
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }
            : {},
        },
        (res) => {
          let data = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            data += chunk;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(data) }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(text);
    });
  }

  /** Deposits, retrying (as a web client would) when the server answers 409: stored nothing, try again. */
  async deposit(server: string, id: string, amount: number): Promise<{ balance: number; conflicts: number }> {
    for (let conflicts = 0; conflicts < 20; conflicts++) {
      const res = await this.call(`${server}/accounts/${id}/deposit`, 'POST', { amount });
      if (res.status === 200) return { balance: res.body.balance, conflicts };
      if (res.status !== 409)
        throw new Error(`deposit to ${id}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
    }
    throw new Error(`deposit to ${id}: 20 conflicts in a row`);
  }

  async balance(server: string, id: string): Promise<number> {
    const res = await this.call(`${server}/accounts/${id}`, 'GET');
    if (res.status !== 200)
      throw new Error(`balance of ${id}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.balance;
  }

  close(): void {
    this.agent.destroy();
  }
}
