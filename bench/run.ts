import { spawn, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';

export function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

export interface Ran {
  seconds: number;
  stdout: string;
  stderr: string;
  /** Peak resident memory of the process (all its threads), from /proc where available. */
  peakRssMb: number | null;
}

/** Runs a command to completion, timing it and sampling its peak RSS (VmHWM). */
export function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  settle();
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let peakKb = 0;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const sample = setInterval(() => {
      void readFile(`/proc/${child.pid}/status`, 'utf8').then(
        (status) => {
          const match = /VmHWM:\s+(\d+)/.exec(status);
          if (match) peakKb = Math.max(peakKb, Number(match[1]));
        },
        () => {},
      );
    }, 20);
    child.once('close', (code) => {
      clearInterval(sample);
      const seconds = (performance.now() - started) / 1000;
      if (code !== 0)
        reject(
          new Error(`${command} ${args.join(' ')} failed (${code}): ${stderr.trim().slice(-500)}`),
        );
      else
        resolve({
          seconds,
          stdout,
          stderr,
          peakRssMb: peakKb > 0 ? Math.round(peakKb / 1024) : null,
        });
    });
  });
}

/**
 * Flushes dirty pages to disk before a timed step, so no step pays for the writeback of the one
 * before it (the local S3 server and the repositories share one disk).
 */
export function settle(): void {
  spawnSync('sync', { stdio: 'ignore' });
}

export function tv(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return run(process.execPath, ['bin/tv.mjs', ...args], env);
}
