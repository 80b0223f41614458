// What the comparison probes share: numeric options taken out of the argument list, and the median.

/** Removes `name <number>` from `args` and returns the number, or `fallback` when the option is absent. */
function takeOption(args, name, fallback) {
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  args.splice(at, 2);
  return value;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

module.exports = { takeOption, median };
