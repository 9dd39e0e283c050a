import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';

export interface TvRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, in milliseconds. */
  ms: number;
  /** When stdout last received output, in milliseconds from spawn. */
  lastOutputMs: number;
}

/**
 * The user cache folder the `tv` processes of this test file share (reports and diffs are
 * cached there), never the real one in the home folder.
 */
const CACHE_HOME = join(tmpdir(), `tv-test-cache-${process.pid}`);

/**
 * Runs the built `tv`. Asynchronously: the S3-protocol server runs in this process, and a
 * blocking spawn would keep it from answering. TV_REPO and TV_REDIS_URL start empty.
 */
export function tv(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 180_000, // a hang-catcher, not a speed check: a loaded 2-core box is slow
): Promise<TvRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['bin/tv.mjs', ...args], {
      env: { ...process.env, TV_REPO: '', TV_REDIS_URL: '', XDG_CACHE_HOME: CACHE_HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let lastOutputMs = 0;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      lastOutputMs = performance.now() - started;
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tv ${args.join(' ')} did not finish within ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - started, lastOutputMs });
    });
  });
}

/**
 * Runs the built `tv` on a pseudo-terminal (util-linux `script`), as a person runs it: stdout and
 * stderr are a TTY, so progress bars and colours take their real path. Both streams arrive
 * together on the terminal; the exit code is the command's own (`script -e`).
 */
export function tvOnTerminal(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 180_000,
): Promise<{ code: number | null; output: string }> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, 'bin/tv.mjs', ...args].map(quote).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qefc', command, '/dev/null'], {
      env: {
        ...process.env,
        TV_REPO: '',
        TV_REDIS_URL: '',
        XDG_CACHE_HOME: CACHE_HOME,
        COLUMNS: '120',
        ...env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `tv ${args.join(' ')} on a terminal did not finish within ${timeoutMs} ms: ${output}`,
        ),
      );
    }, timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** --json output: exactly one JSON value on stdout, nothing else. */
export function json(out: string): unknown {
  const lines = out.trim().split('\n');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0] as string);
}
