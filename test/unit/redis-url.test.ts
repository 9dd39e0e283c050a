import { describe, expect, it } from 'vitest';
import {
  parseRedisSetting,
  redactRedisSetting,
  redisTargetAddress,
  withRedisCredentials,
} from '../../electron/engine/storage/redis-url';

describe('Redis settings: one server or a cluster', () => {
  it('redis:// and rediss:// name one server', () => {
    const target = parseRedisSetting('rediss://:pw@cache.example:6380/0');
    expect(target.kind).toBe('standalone');
    expect(redisTargetAddress(target)).toBe('cache.example:6380');
  });

  it('redis+cluster:// names the seed nodes, with credentials and TLS', () => {
    expect(parseRedisSetting('rediss+cluster://ops:p%40ss@10.0.0.1:7000,[::1]:7001,h3')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '::1', port: 7001 },
        { host: 'h3', port: 6379 },
      ],
      username: 'ops',
      password: 'p@ss',
      tls: true,
    });
    expect(parseRedisSetting('redis+cluster://h1:7000').kind).toBe('cluster');
  });

  it('a comma-separated list of redis:// URLs names a cluster too', () => {
    const target = parseRedisSetting('redis://:pw@h1:7000,redis://:pw@h2:7001');
    expect(target).toMatchObject({
      kind: 'cluster',
      nodes: [
        { host: 'h1', port: 7000 },
        { host: 'h2', port: 7001 },
      ],
      password: 'pw',
      tls: false,
    });
    expect(() => parseRedisSetting('redis://:a@h1:1,rediss://:a@h2:2', 'TV_REDIS_URL')).toThrow(
      /TV_REDIS_URL is not a Redis URL .*the nodes of one cluster take the same scheme and credentials/,
    );
  });

  it('bad settings are refused in one line that repeats no password', () => {
    for (const bad of [
      'redis+cluster://:secret@h1:99999',
      'redis+cluster://:secret@h1:7000,not a host',
      'redis://:secret@h1:1,ftp://h2',
    ]) {
      let message = '';
      try {
        parseRedisSetting(bad, '--redis');
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/^--redis is not a Redis URL .*expected redis:\/\//);
      expect(message).not.toContain('secret');
    }
  });

  it("credentials are redacted and can be set or removed in the setting's own form", () => {
    expect(redactRedisSetting('redis+cluster://u:secret@h1:1,h2:2')).toBe(
      'redis+cluster://***@h1:1,h2:2',
    );
    expect(redactRedisSetting('redis://:secret@h1:1,redis://:secret@h2:2')).toBe(
      'redis://***@h1:1,redis://***@h2:2',
    );
    const cluster = parseRedisSetting('rediss+cluster://h1:1,h2:2');
    expect(withRedisCredentials(cluster, { password: 'p w' })).toBe(
      'rediss+cluster://:p%20w@h1:1,h2:2',
    );
    const withPassword = parseRedisSetting('redis+cluster://ops:pw@h1:1');
    expect(withRedisCredentials(withPassword, { username: '', password: '' })).toBe(
      'redis+cluster://h1:1',
    );
    expect(withRedisCredentials(parseRedisSetting('redis://h:1'), { password: 'x' })).toBe(
      'redis://:x@h:1',
    );
  });
});
