import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlackholeServer, RedisServer } from '../harness/redis';
import { S3Server, TEST_CREDENTIALS, TEST_REGION } from '../harness/s3';

describe('redis harness', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(() => redis.dispose());

  it('starts a real redis-server that stores and returns a value', async () => {
    const client = new Redis(redis.url);
    try {
      await client.set('tv:harness', 'hello');
      expect(await client.get('tv:harness')).toBe('hello');
    } finally {
      client.disconnect();
    }
  });

  it('kills the server mid-test and restarts it empty on the same port', async () => {
    const client = new Redis(redis.url, { maxRetriesPerRequest: 0, retryStrategy: () => 50 });
    client.on('error', () => {});
    try {
      await client.set('tv:before-kill', '1');
      await redis.kill();
      expect(redis.running).toBe(false);
      await expect(client.get('tv:before-kill')).rejects.toThrow();
      await redis.restart();
      const reconnected = new Redis(redis.url);
      expect(await reconnected.get('tv:before-kill')).toBeNull(); // no persistence
      reconnected.disconnect();
    } finally {
      client.disconnect();
    }
  });

  it('gives a port that accepts connections and never answers', async () => {
    const blackhole = await BlackholeServer.start();
    const client = new Redis(blackhole.url, { commandTimeout: 100, maxRetriesPerRequest: 0 });
    client.on('error', () => {});
    try {
      await expect(client.get('anything')).rejects.toThrow(/timed out/i);
      expect(blackhole.connections).toBe(1);
    } finally {
      client.disconnect();
      await blackhole.close();
    }
  });
});

describe('s3 harness', () => {
  let s3: S3Server;
  let client: S3Client;
  beforeAll(async () => {
    s3 = await S3Server.start();
    client = new S3Client({
      endpoint: s3.endpoint,
      region: TEST_REGION,
      credentials: TEST_CREDENTIALS,
      forcePathStyle: true,
      maxAttempts: 3,
    });
  });
  afterAll(async () => {
    client.destroy();
    await s3.stop();
  });

  it('round-trips an object and counts requests by method', async () => {
    s3.resetCounts();
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'a/b', Body: 'payload' }));
    const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'a/b' }));
    expect(await got.Body?.transformToString()).toBe('payload');
    expect(s3.count('PUT')).toBe(1);
    expect(s3.count('GET')).toBe(1);
  });

  it('injects 503 SlowDown that the SDK retries, and fails with SlowDown when every try is refused', async () => {
    s3.resetCounts();
    s3.faults.slowDownRate = 1;
    try {
      await expect(
        client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'refused', Body: 'x' })),
      ).rejects.toMatchObject({ name: 'SlowDown' });
      expect(s3.count('PUT')).toBe(3); // maxAttempts
      expect(s3.injectedSlowDowns).toBe(3);
    } finally {
      s3.faults.slowDownRate = 0;
    }
  });

  it('adds the configured latency to each request', async () => {
    s3.faults.latencyMs = 150;
    try {
      const started = performance.now();
      await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'slow', Body: 'x' }));
      expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    } finally {
      s3.faults.latencyMs = 0;
    }
  });
});
