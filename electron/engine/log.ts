import { pino, type Logger as PinoLogger } from 'pino';

/** The logging surface the engine uses; pino underneath. */
export type Logger = Pick<PinoLogger, 'debug' | 'info' | 'warn' | 'error'>;

/** Paths whose values never reach a log line. */
const REDACT = [
  'password',
  '*.password',
  'secretAccessKey',
  '*.secretAccessKey',
  'sessionToken',
  '*.sessionToken',
  'token',
  '*.token',
];

/**
 * A logger for people at a terminal: one short line per message on stderr ("tv: warning: ...").
 * Level from TV_LOG_LEVEL (default: warn).
 */
export function createCliLogger(level = process.env['TV_LOG_LEVEL'] ?? 'warn'): Logger {
  const names: Record<number, string> = {
    20: 'debug',
    30: 'info',
    40: 'warning',
    50: 'error',
    60: 'fatal',
  };
  return pino(
    { level, redact: { paths: REDACT, censor: '[redacted]' }, base: null, timestamp: false },
    {
      write(line: string) {
        const record = JSON.parse(line) as { level: number; msg: string };
        process.stderr.write(`tv: ${names[record.level] ?? 'log'}: ${record.msg}\n`);
      },
    },
  );
}

/** A JSON logger (the desktop app and the server write these to their log file). */
export function createJsonLogger(
  destination: NodeJS.WritableStream,
  level = process.env['TV_LOG_LEVEL'] ?? 'info',
): Logger {
  return pino({ level, redact: { paths: REDACT, censor: '[redacted]' } }, destination);
}

/** A logger that drops everything: for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });

/** A URL fit for messages and logs: any user name and password replaced. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    if (parsed.username && parsed.password) parsed.username = parsed.username ? '***' : '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}
