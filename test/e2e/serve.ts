import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ServeProcess {
  url: string;
  origin: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Runs the real `tv serve` on a free port and waits for the URL it prints. */
export async function startServe(env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  // The user's cache folder (the files cache, kept reports) is one of this server's, never the real one.
  const cache = env['XDG_CACHE_HOME'] ? undefined : await mkdtemp(join(tmpdir(), 'tv-e2e-cache-'));
  const child = spawn(process.execPath, ['bin/tv.mjs', 'serve', '--port', '0'], {
    env: { ...process.env, ...(cache ? { XDG_CACHE_HOME: cache } : {}), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`tv serve printed no URL within 20 s: ${output}`)),
      20_000,
    );
    const onData = (d: Buffer) => {
      output += d.toString();
      const match = /(http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`tv serve exited (${code}): ${output}`)));
  });
  return {
    url,
    origin: new URL(url).origin,
    process: child,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      if (cache) await rm(cache, { recursive: true, force: true });
    },
  };
}
