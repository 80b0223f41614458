/**
 * Keeps `npm test` output free of CAIRN_CORRUPTION_FOUND process warnings: a test that damages data
 * expects the report, so it passes a `reporter` and asserts on it. A report that reaches the default
 * reporter (process.emitWarning) fails the test that caused it, naming the report.
 */
const leaked = [];
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, options, ...rest) {
  const code = typeof options === 'object' && options !== null ? options.code : undefined;
  if (code === 'CAIRN_CORRUPTION_FOUND') {
    leaked.push(String(warning instanceof Error ? warning.message : warning));
    return;
  }
  return emitWarning.call(this, warning, options, ...rest);
};

afterEach(() => {
  if (leaked.length === 0) return;
  const messages = leaked.splice(0);
  throw new Error(
    `${messages.length} corruption report(s) went to process warnings; pass a reporter and check them:\n` +
      messages.map((m) => `  ${m}`).join('\n'),
  );
});
