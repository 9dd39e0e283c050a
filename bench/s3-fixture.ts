import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { RedisCluster, RedisServer } from '../test/harness/redis';
import { TEST_CREDENTIALS, TEST_REGION } from '../test/harness/s3';
import { Repository } from '../electron/engine/repository/repository';
import { Service } from '../electron/engine/service';

/** The S3-protocol server in its own process, driven over stdin/stdout. */
export class S3Child {
  private readonly lines: AsyncIterator<string>;
  private constructor(
    private readonly child: ChildProcess,
    readonly endpoint: string,
    readonly bucket: string,
    private readonly dir: string,
    lines: AsyncIterator<string>,
  ) {
    this.lines = lines;
  }

  static async start(): Promise<S3Child> {
    // --openssl-legacy-provider: the server encrypts listing continuation tokens with DES (see
    // vitest.config.ts); without it a listing past 1,000 keys fails.
    const child = spawn(
      process.execPath,
      ['--openssl-legacy-provider', '--import', 'tsx', 'bench/s3-child.ts'],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const first = await lines.next();
    const { endpoint, bucket, dir } = JSON.parse(String(first.value)) as {
      endpoint: string;
      bucket: string;
      dir: string;
    };
    return new S3Child(child, endpoint, bucket, dir, lines);
  }

  async command(line: string): Promise<Record<string, number>> {
    this.child.stdin!.write(line + '\n');
    return JSON.parse(String((await this.lines.next()).value)) as Record<string, number>;
  }

  /** CPU seconds (user + system) the server process has used so far; null where /proc is absent. */
  cpuSeconds(): number | null {
    try {
      // Fields 14 and 15 of /proc/PID/stat, after the parenthesised command name.
      const stat = readFileSync(`/proc/${this.child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      return null;
    }
  }

  /**
   * Ends the server's input, so it stops and removes its folder of objects (gigabytes after a
   * full run), and waits for it to exit; kills it if it has not within a minute (removing tens of
   * thousands of objects takes a while on a busy disk). The folder is removed here as well, so
   * that a server killed on its way out leaves nothing behind.
   */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.stdin!.end();
      const timer = setTimeout(() => this.child.kill(), 60_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** The options of a client of the repository `prefix` in the server's bucket. */
export function s3Options(s3: S3Child, prefix: string, redisUrl: string | undefined) {
  return {
    repository: `s3://${s3.bucket}/${prefix}`,
    redisUrl,
    s3: s3Settings(s3),
    mode: 'cli' as const,
  };
}

export function s3Service(s3: S3Child, prefix: string, redisUrl: string | undefined): Service {
  return new Service(s3Options(s3, prefix, redisUrl));
}

function s3Settings(s3: S3Child) {
  return { endpoint: s3.endpoint, region: TEST_REGION, credentials: TEST_CREDENTIALS };
}

/** Creates a repository at s3://bench/<prefix>: format 3 (of a pack size), or format 1. */
export async function s3Repository(
  s3: S3Child,
  prefix: string,
  options: { format?: number; packSize?: number } = {},
): Promise<void> {
  const repo = await Repository.init({
    repository: `s3://${s3.bucket}/${prefix}`,
    s3: s3Settings(s3),
    ...options,
  });
  await repo.close();
}

/** The environment that points `tv` at the server, the AWS way. */
export function s3Env(s3: S3Child): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_REGION: TEST_REGION,
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
  };
}

export { RedisCluster, RedisServer };
