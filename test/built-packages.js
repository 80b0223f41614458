/**
 * jest globalSetup: some tests run built JavaScript (piscina worker threads, crash-test child processes,
 * the CLI and the examples as an operator starts them), which `npm test` builds before jest starts. Run
 * jest alone on a fresh clone and they would fail in puzzling ways; this checks once, up front, that every
 * source file of every package and example has its built counterpart.
 */
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

function sources(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(file);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [file] : [];
  });
}

module.exports = async () => {
  const missing = [];
  for (const group of ['packages', 'examples']) {
    for (const name of fs.readdirSync(path.join(root, group))) {
      const src = path.join(root, group, name, 'src');
      if (!fs.existsSync(src)) continue;
      for (const file of sources(src)) {
        const built = path.join(root, group, name, 'dist', path.relative(src, file).replace(/\.ts$/, '.js'));
        if (!fs.existsSync(built)) missing.push(path.relative(root, built));
      }
    }
  }
  if (missing.length > 0) {
    const shown =
      missing.slice(0, 5).join(', ') + (missing.length > 5 ? ` and ${missing.length - 5} more` : '');
    throw new Error(
      `built JavaScript is missing (${shown}): worker threads and child processes in these tests run the ` +
        'built packages; run `npm run build` first (`npm test` does)',
    );
  }
};
