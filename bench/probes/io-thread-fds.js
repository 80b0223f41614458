// Stress for descriptors across IO threads: file journals and snapshot stores opened and closed in a loop
// with `ioIdleMs: 0` (their pool's thread ends at every close) beside two journals and snapshot stores on
// another pool appending and saving. Before the pools started threads with trackUnmanagedFds: false, an
// ending thread closed descriptors it had opened even after their numbers were reused, and a write of the
// busy stores failed with EBADF within seconds.
//
//   node bench/probes/io-thread-fds.js [repository root] [cycles]   (after npx tsc -b tsconfig.build.json)
//
// Prints how many events were appended and the errors met (0 expected); exits 1 on any.
const path = require('node:path');
const os = require('node:os');
const fs = require('node:fs');
const root = path.resolve(process.argv[2] ?? path.join(__dirname, '..', '..'));
const { FileMessageJournal } = require(path.join(root, 'packages/journal-file/dist/index.js'));
const { FileSnapshotStore } = require(path.join(root, 'packages/snapshot/dist/index.js'));
const idle = { ioIdleMs: 0 };
(async () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-io-thread-fds-'));
  const writers = await Promise.all(
    [0, 1].map(async (i) => ({
      j: await FileMessageJournal.open({ path: path.join(base, `w${i}`), ioThreads: 2, ...idle }),
      s: await FileSnapshotStore.open({ path: path.join(base, `ws${i}`), ioThreads: 2, ...idle }),
    })),
  );
  let stop = false,
    appended = 0;
  const errors = [];
  const loops = writers.map(async ({ j, s }, i) => {
    let k = 0;
    while (!stop) {
      try {
        await j.append(`id-${i}`, { n: appended++, pad: 'x'.repeat(200) });
        if (++k % 20 === 0) await s.save(`id-${i}`, k, { k });
      } catch (e) {
        errors.push(String(e));
        stop = true;
      }
    }
  });
  for (let c = 0; c < Number(process.argv[3] || 200) && !stop; c++) {
    try {
      const j = await FileMessageJournal.open({ path: path.join(base, `c${c % 5}`), ioThreads: 1, ...idle });
      const s = await FileSnapshotStore.open({ path: path.join(base, `cs${c % 5}`), ioThreads: 1, ...idle });
      await j.append('x', { c });
      await s.save('x', c + 1, { c });
      for await (const _e of j.readFrom('x', 1)) {
      }
      await s.loadLatest('x');
      await j.close();
      await s.close();
    } catch (e) {
      errors.push(`cycle: ${String(e)}`);
      stop = true;
    }
  }
  stop = true;
  await Promise.all(loops);
  for (const { j, s } of writers) {
    await j.close();
    await s.close();
  }
  console.log(`appended ${appended}, errors ${errors.length}: ${errors.slice(0, 3).join(' | ')}`);
  if (errors.length > 0) process.exitCode = 1;
  fs.rmSync(base, { recursive: true, force: true });
})().catch((e) => {
  console.error('FAILED', e);
  process.exit(1);
});
