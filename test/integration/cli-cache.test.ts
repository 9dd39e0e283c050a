import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../harness/ports';
import { BlackholeServer, RedisServer } from '../harness/redis';
import { seededBytes } from '../unit/prng';
import { startServers, type TestServers } from './stores';
import { json, tv } from './tv';

let servers: TestServers;
let redis: RedisServer;
let work: TestServers['work'];
let src: string;
let blackhole: BlackholeServer;
let closedPort: number;
beforeAll(async () => {
  servers = await startServers('tv-cli-cache-');
  ({ redis, work } = servers);
  src = join(work.path, 'model');
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'weights.bin'), seededBytes(11, 1_500_000));
  blackhole = await BlackholeServer.start();
  closedPort = await freePort();
});
afterAll(async () => {
  redis?.resume();
  await blackhole?.close();
  await servers?.stop();
});

let n = 0;
const repo = () => join(work.path, `repo-${++n}`);

interface Status {
  state: string;
  redis: string | null;
  latencyMs: { p50: number; p99: number } | null;
  hits: number;
  lastError: string | null;
  shared: {
    repositoryId: string | null;
    keys: { count: number; method: string } | null;
    memory: { usedBytes: number } | null;
    totals: { hits: number; misses: number; uploads: number; since: string } | null;
  } | null;
}

describe('tv cache status', () => {
  it('says down, with the reason, for a Redis that refuses, never answers, or is frozen', async () => {
    const env = { TV_REPO: repo() };
    expect((await tv(['init'], env)).code).toBe(0);
    const refused = await tv(['cache', 'status', '--json'], {
      ...env,
      TV_REDIS_URL: `redis://127.0.0.1:${closedPort}`,
    });
    expect(json(refused.stdout)).toMatchObject({
      state: 'down',
      lastError: `Redis at 127.0.0.1:${closedPort} refused the connection`,
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(''); // the status says it: no warning besides
    const human = await tv(['cache', 'status'], { ...env, TV_REDIS_URL: blackhole.url });
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(
      new RegExp(
        `^cache: down \\(${blackhole.url}\\): Redis at 127\\.0\\.0\\.1:${blackhole.port} accepted the connection but did not answer within \\d+ ms`,
      ),
    );
    redis.pause();
    try {
      const frozen = await tv(['cache', 'status', '--json'], { ...env, TV_REDIS_URL: redis.url });
      expect(json(frozen.stdout)).toMatchObject({
        state: 'down',
        lastError: expect.stringMatching(/did not answer within \d+ ms/),
      });
    } finally {
      redis.resume();
    }
  });

  it("shows the shared figures every client keeps in Redis, not a fresh process's zeros", async () => {
    const env = { TV_REPO: repo(), TV_REDIS_URL: redis.url };
    const first = await tv(['push', 'shared', src, '--json'], env);
    expect(first.code).toBe(0);
    const pushed = json(first.stdout) as { chunks: number };
    // Another model with the same bytes: every chunk is asked about, and the cache holds each.
    expect((await tv(['push', 'other', src], env)).code).toBe(0);
    const run = await tv(['cache', 'status', '--json'], env);
    expect(run.code).toBe(0);
    const status = json(run.stdout) as Status;
    expect(status.state).toBe('up');
    expect(status.latencyMs?.p50).toBeGreaterThan(0);
    expect(status.hits).toBe(0); // this process's own counters
    expect(status.shared?.keys).toMatchObject({ method: 'counted' });
    // The chunks, the one manifest both versions share, and the two version records.
    expect(status.shared?.keys?.count).toBe(pushed.chunks + 3);
    expect(status.shared?.memory?.usedBytes).toBeGreaterThan(0);
    // Every chunk missed once (the first push) and hit once (the second), plus the second push's
    // manifest, which the first had stored; an upload's own look before it is not a second miss.
    expect(status.shared?.totals).toMatchObject({
      misses: pushed.chunks,
      hits: pushed.chunks + 1,
      hitRate: Math.round(((pushed.chunks + 1) / (2 * pushed.chunks + 1)) * 1000) / 1000,
    });
    expect(status.shared?.totals?.uploads).toBeGreaterThanOrEqual(pushed.chunks);
    const human = await tv(['cache', 'status'], env);
    expect(human.stdout).toMatch(/^cache: up \(redis:\/\/127\.0\.0\.1:\d+\), PING [\d.]+ ms/);
    expect(human.stdout).toMatch(new RegExp(`${pushed.chunks + 3} keys \\(counted\\)`));
    expect(human.stdout).toMatch(/kept in Redis by every client/);
  });
});

describe('a Redis that is not there', () => {
  it('costs commands that do not need it nothing: log and models never connect', async () => {
    const env = { TV_REPO: repo() };
    expect((await tv(['push', 'm', src], env)).code).toBe(0);
    const silent = await BlackholeServer.start();
    try {
      for (const args of [['log', 'm'], ['models']]) {
        const run = await tv(args, { ...env, TV_REDIS_URL: silent.url });
        expect(run.code).toBe(0);
        expect(run.stderr).toBe('');
      }
      expect(silent.accepted).toBe(0);
    } finally {
      await silent.close();
    }
    const refused = await tv(['log', 'm'], {
      ...env,
      TV_REDIS_URL: `redis://127.0.0.1:${closedPort}`,
    });
    expect(refused.stderr).toBe('');
  });

  it('costs a push its start-up budget at most, with one warning that names the address, and no wait at exit', async () => {
    const env = { TV_REPO: repo() };
    for (const url of [blackhole.url, `redis://:very-secret@127.0.0.1:${closedPort}`]) {
      const run = await tv(['push', `b${++n}`, src, '--json'], { ...env, TV_REDIS_URL: url });
      expect(run.code).toBe(0);
      const warnings = run.stderr.trim().split('\n');
      expect(warnings).toHaveLength(1);
      // Refused: known at once. Silent: given up on after the start-up budget (250 ms).
      expect(warnings[0]).toMatch(
        url === blackhole.url
          ? new RegExp(
              `^tv: warning: Redis cache unavailable \\(Redis at 127\\.0\\.0\\.1:${blackhole.port} accepted the connection but did not answer within 250 ms\\)`,
            )
          : new RegExp(
              `^tv: warning: Redis cache unavailable \\(Redis at 127\\.0\\.0\\.1:${closedPort} refused the connection\\)`,
            ),
      );
      expect(run.stderr).not.toContain('very-secret');
      // The process ends once its result is out: the Redis client's 2 s disconnect timer used to
      // keep it waiting (a generous bound for a loaded box).
      expect(run.ms - run.lastOutputMs).toBeLessThan(1_000);
    }
  });
});

describe('a password given to a Redis that has none', () => {
  it("is said once, through tv's own warning, and the cache works: not ioredis' console line", async () => {
    // HELLO disabled, as on Redis 5: the client sends AUTH, which Redis answers that no password
    // is set (with HELLO, Redis 6 and later take any password for a user that has none).
    const old = await RedisServer.start(['--rename-command', 'HELLO', '']);
    try {
      const url = `redis://:not-needed@127.0.0.1:${old.port}`;
      const run = await tv(['push', `pw${++n}`, src], { TV_REPO: repo(), TV_REDIS_URL: url });
      expect(run.code).toBe(0);
      expect(run.stderr.trim().split('\n')).toEqual([
        `tv: warning: Redis at 127.0.0.1:${old.port} has no password, but the Redis URL gives one: the cache works; remove the password from it to stop this warning`,
        expect.stringMatching(/^tv: created a new repository at /),
      ]);
      expect(run.stderr).not.toContain('not-needed');
      const client = new Redis(old.port, '127.0.0.1');
      try {
        expect((await client.keys('tv:obj:*')).length).toBeGreaterThan(0);
      } finally {
        client.disconnect();
      }
    } finally {
      await old.dispose();
    }
  });
});

describe('Redis settings a user can act on', () => {
  it('a malformed URL names where it came from and the expected form', async () => {
    const env = { TV_REPO: repo() };
    const fromEnv = await tv(['models'], { ...env, TV_REDIS_URL: 'not-a-url' });
    expect(fromEnv.code).toBe(1);
    expect(fromEnv.stderr.trim()).toBe(
      'tv: TV_REDIS_URL is not a Redis URL ("not-a-url"): expected redis://[[user]:password@]host[:port][/db] (rediss:// for TLS), or for a Redis Cluster redis+cluster://[[user]:password@]host:port,host:port (rediss+cluster:// for TLS) or a comma-separated list of redis:// URLs',
    );
    const fromFlag = await tv(['--redis', 'localhost:6379', 'models'], env);
    expect(fromFlag.stderr.trim()).toMatch(/^tv: --redis is not a Redis URL \("localhost:6379"\)/);
    const secret = await tv(['models'], { ...env, TV_REDIS_URL: 'redis://:hunter2@exa mple:6379' });
    expect(secret.code).toBe(1);
    expect(secret.stderr).toMatch(/^tv: TV_REDIS_URL is not a Redis URL/);
    expect(secret.stderr).not.toContain('hunter2');
  });

  it('a password Redis asks for, or refuses, is said so, and never shown', async () => {
    const client = new Redis(redis.url);
    await client.config('SET', 'requirepass', 'right-one');
    try {
      const env = { TV_REPO: repo() };
      expect((await tv(['init'], env)).code).toBe(0);
      const none = await tv(['cache', 'status', '--json'], { ...env, TV_REDIS_URL: redis.url });
      expect(json(none.stdout)).toMatchObject({
        state: 'down',
        lastError: expect.stringMatching(/^Redis at 127\.0\.0\.1:\d+ needs a password/),
      });
      const wrong = await tv(['cache', 'status', '--json'], {
        ...env,
        TV_REDIS_URL: redis.url.replace('//', '//:wrong-one@'),
      });
      expect(json(wrong.stdout)).toMatchObject({
        state: 'down',
        lastError: expect.stringMatching(/^Redis at 127\.0\.0\.1:\d+ refused the password/),
      });
      expect(wrong.stdout + wrong.stderr).not.toContain('wrong-one');
      const right = await tv(['cache', 'status', '--json'], {
        ...env,
        TV_REDIS_URL: redis.url.replace('//', '//:right-one@'),
      });
      expect(json(right.stdout)).toMatchObject({
        state: 'up',
        redis: expect.stringContaining('***'),
      });
      expect(right.stdout).not.toContain('right-one');
    } finally {
      await client.config('SET', 'requirepass', '');
      client.disconnect();
    }
  });
});
