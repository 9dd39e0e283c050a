import { InvalidArgumentError, type Command } from 'commander';
import type { ReportProgress } from '../../shared/types';
import type { Service } from '../engine/service';

/** Options every command takes (declared on the program), and each command's own --json. */
export interface CommandOptions {
  repo?: string;
  redis?: string;
  /** How long S3 requests that are throttled keep being retried (--retry-for). */
  retryFor?: Duration;
  json?: boolean;
}

/** A duration as --grace and --retry-for take it, kept as typed so that messages show it the same way. */
export interface Duration {
  seconds: number;
  text: string;
}

export function duration(value: string): Duration {
  const match = /^(\d+)\s*(s|m|h|d)?$/.exec(value.trim());
  if (!match)
    throw new InvalidArgumentError('a duration is a number with s, m, h or d (e.g. 24h, 30m, 0)');
  const unit = (match[2] ?? 's') as 's' | 'm' | 'h' | 'd';
  return {
    seconds: Number(match[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[unit],
    text: `${match[1]}${match[2] ?? 's'}`,
  };
}

/**
 * Runs a command against the service; prints errors as one line on stderr (and, with --json, one
 * JSON object on stdout) and sets a non-zero exit code.
 */
export async function withService<T>(
  command: Command,
  action: (service: Service) => Promise<T>,
): Promise<T | undefined> {
  const [{ Service }, { resolveConfig }, { createCliLogger }] = await Promise.all([
    import('../engine/service'),
    import('../engine/config'),
    import('../engine/log'),
  ]);
  const flags = command.optsWithGlobals<CommandOptions>();
  let service: Service | undefined;
  try {
    service = new Service({
      ...resolveConfig(flags),
      ...(flags.retryFor !== undefined
        ? { s3: { retryForMs: flags.retryFor.seconds * 1000 } }
        : {}),
      mode: 'cli',
      logger: createCliLogger(),
    });
    return await action(service);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (flags.json) process.stdout.write(JSON.stringify({ error: message }) + '\n');
    process.stderr.write(`tv: ${message}\n`);
    process.exitCode = err instanceof Error && err.name === 'PushCancelledError' ? 130 : 1;
    return undefined;
  } finally {
    await service?.close();
  }
}

/** Prints a result: one JSON value with --json, else the human text. */
export function emit(json: boolean | undefined, value: unknown, human: () => string): void {
  process.stdout.write(json ? JSON.stringify(value) + '\n' : human() + '\n');
}

/** Time left for people: "45s", "12 min", "3 h 20 min". */
function formatEta(seconds: number): string {
  if (seconds < 100) return `${seconds}s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 120 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A progress bar on stderr, only at a terminal. */
export async function progressBar(label: string) {
  if (!process.stderr.isTTY) return undefined;
  // cli-progress is CommonJS: bundled, its module has only a default export.
  const { default: cliProgress } = await import('cli-progress');
  const { formatBytes } = await import('./format');
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    format: `${label} |{bar}| {percentage}% | {done} of {total_h} | {rate} MB/s{eta_h}{extra}`,
    hideCursor: true,
    clearOnComplete: true,
    barsize: 24,
  });
  let started = false;
  return {
    update(done: number, total: number, rate: number, eta: number | null, extra = '') {
      const payload = {
        done: formatBytes(done),
        total_h: formatBytes(total),
        rate,
        // No ETA until the rate is measured (the engine says null until then).
        eta_h: eta === null ? '' : ` | ETA ${formatEta(eta)}`,
        extra,
      };
      if (!started) {
        bar.start(Math.max(total, 1), done, payload);
        started = true;
      } else bar.update(done, payload);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/**
 * The progress of a report or diff computed for the first time, on stderr at a terminal only:
 * manifests read, then files done, headers parsed and bytes fetched.
 */
export async function reportProgressBar(label: string) {
  if (!process.stderr.isTTY) return undefined;
  const { default: cliProgress } = await import('cli-progress');
  const { formatBytes } = await import('./format');
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    format: `${label} |{bar}| {what}`,
    hideCursor: true,
    clearOnComplete: true,
    barsize: 24,
  });
  let started = false;
  return {
    update(p: ReportProgress) {
      const what =
        p.phase === 'manifests'
          ? `reading manifests: ${p.manifestsRead}`
          : `${p.filesDone} of ${p.files} files | ${p.headersRead} headers read | ${formatBytes(p.bytesRead)} fetched`;
      const total = Math.max(p.files, 1);
      if (!started) {
        bar.start(total, p.filesDone, { what });
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(p.filesDone, { what });
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
