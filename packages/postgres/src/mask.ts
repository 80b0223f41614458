/**
 * Secrets never reach a message: every error and report of this package passes through maskSecrets,
 * which hides the password of any connection URL in the text, `password=...` settings, and every
 * password this process handed to the driver (registered by registerSecret), wherever it appears.
 */
const secrets = new Set<string>();

/** Remembers a password (from a connection string or PGPASSWORD) so that it is masked wherever it appears. */
export function registerSecret(secret: string | undefined): void {
  if (secret && secret.length >= 3) secrets.add(secret);
}

/** Registers the password of a connection string, if it has one. */
export function registerConnectionString(connectionString: string | undefined): void {
  registerSecret(process.env.PGPASSWORD);
  if (connectionString === undefined) return;
  try {
    registerSecret(decodeURIComponent(new URL(connectionString).password));
  } catch {
    const match = /password\s*=\s*'?([^\s']+)/i.exec(connectionString);
    registerSecret(match?.[1]);
  }
}

export function maskSecrets(text: string): string {
  let masked = text
    .replace(/(\w+:\/\/[^:/?#@\s]*:)[^@/\s]*@/g, '$1***@')
    .replace(/(password\s*=\s*)('[^']*'|\S+)/gi, '$1***');
  for (const secret of secrets) masked = masked.split(secret).join('***');
  return masked;
}
