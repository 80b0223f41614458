import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { runCli } from '@cairn/cli';
import { captureResources, expectNoLeakedResources } from '@cairn/testkit';
import { BACKENDS, cli, layout, makeData, openData, tempDir } from './cli-fixtures';

describe('cairn releases what it opens', () => {
  test.each(BACKENDS)(
    '%s: every command, also failing ones, leaves no file, handle, timer or thread open',
    async (backend) => {
      const root = await tempDir();
      try {
        const l = await layout(root.dir, backend);
        await makeData(l);
        const dump = path.join(root.dir, 'out.jsonl');
        const again = await layout(root.dir, backend, 'again');
        // One run first: module loading and lazily created pools are not leaks.
        await cli('ls', '--config', l.config);
        const before = captureResources();
        const runs = [
          await cli('verify', '--config', l.config),
          await cli('ls', '--config', l.config),
          await cli('events', 'acct-a', '--config', l.config, '--max', '5'),
          await cli('snapshots', 'acct-a', '--config', l.config),
          await cli('stats', '--config', l.config),
          await cli('repair', '--truncate-after-corruption', 'acct-a', '--config', l.config),
          await cli('copy', '--from', l.config, '--to-dump', dump),
          await cli('copy', '--from-dump', dump, '--to', again.config),
          await cli('verify', '--journal', path.join(root.dir, 'nowhere')),
        ];
        // Repeated opens and closes leave nothing behind either.
        for (let round = 0; round < 10; round++) {
          expect((await cli('verify', '--config', l.config)).code).toBe(0);
        }
        // The last command fails on purpose (exit 2): failing commands must release everything too.
        expect(runs.map((r) => r.code)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 2]);
        await expectNoLeakedResources(before);
      } finally {
        await root.remove();
      }
    },
  );

  test('a journal a running writer holds is read read-only: no lock taken, the writer carries on', async () => {
    const root = await tempDir();
    try {
      const l = await layout(root.dir, 'file');
      await makeData(l);
      const running = await openData(l);
      try {
        const run = await cli('verify', '--config', l.config);
        expect(run.code).toBe(0);
        expect(run.stderr).not.toMatch(/locked/);
        // The writer still holds its lock and can append after cairn has looked.
        expect(await running.journal.append('acct-a', { type: 'deposited', amount: 1 })).toBeGreaterThan(1);
      } finally {
        await running.close();
      }
      expect((await cli('verify', '--config', l.config)).code).toBe(0);
    } finally {
      await root.remove();
    }
  });

  test('the progress bar is drawn on stderr only when stderr is a terminal', async () => {
    const root = await tempDir();
    try {
      const l = await layout(root.dir, 'lmdb');
      await makeData(l);
      const capture = (isTTY: boolean) => {
        const stream = Object.assign(new PassThrough(), { isTTY });
        let text = '';
        stream.setEncoding('utf8').on('data', (s: string) => {
          text += s;
        });
        return { stream, text: () => text };
      };
      const tty = capture(true);
      const out = capture(false);
      expect(await runCli(['verify', '--config', l.config], { stdout: out.stream, stderr: tty.stream })).toBe(
        0,
      );
      expect(tty.text()).toContain('verifying [');
      expect(tty.text()).toContain('3/3');
      expect(out.text()).not.toContain('verifying [');
      const piped = capture(false);
      await runCli(['verify', '--config', l.config], { stdout: out.stream, stderr: piped.stream });
      expect(piped.text()).toBe('');
      const copying = capture(true);
      const dump = path.join(root.dir, 'progress.jsonl');
      await runCli(['copy', '--from', l.config, '--to-dump', dump], {
        stdout: out.stream,
        stderr: copying.stream,
      });
      expect(copying.text()).toContain('copying [');
    } finally {
      await root.remove();
    }
  });
});
