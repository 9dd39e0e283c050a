import type { Settings, SettingsInput } from '../../shared/types';
import { defaultRepository } from './config';
import { parseRedisSetting, redisPassword, withRedisCredentials } from './storage/redis-url';
import { S3_DEFAULTS, type S3Options } from './storage/s3-options';

/** Settings with their secrets: lives in the main process only, never sent to a page. */
export interface StoredSettings {
  repository: string;
  s3Endpoint: string;
  s3Region: string;
  s3AccessKeyId: string;
  s3SecretAccessKey: string;
  redisUrl: string;
  redisPassword: string;
  uploadConcurrency: number;
  /** Whether pushes skip files that look as when last pushed (the files cache). */
  filesCache: boolean;
  /** How long a request throttled by S3 keeps being retried, in seconds. */
  retryForSeconds: number;
}

/** Where a front end keeps its settings: the desktop app's encrypted file, or the environment. */
export interface SettingsStore {
  readonly editable: boolean;
  load(): Promise<StoredSettings>;
  save(settings: StoredSettings): Promise<void>;
}

export const DEFAULT_SETTINGS: StoredSettings = {
  repository: '',
  s3Endpoint: '',
  s3Region: '',
  s3AccessKeyId: '',
  s3SecretAccessKey: '',
  redisUrl: '',
  redisPassword: '',
  uploadConcurrency: 64,
  filesCache: true,
  retryForSeconds: S3_DEFAULTS.retryForMs / 1000,
};

/** What a page may see. */
export function publicSettings(s: StoredSettings, editable: boolean): Settings {
  return {
    repository: s.repository,
    s3Endpoint: s.s3Endpoint,
    s3Region: s.s3Region,
    s3AccessKeyId: s.s3AccessKeyId,
    s3SecretAccessKeySet: s.s3SecretAccessKey !== '',
    redisUrl: s.redisUrl,
    redisPasswordSet: s.redisPassword !== '',
    uploadConcurrency: s.uploadConcurrency,
    filesCache: s.filesCache,
    retryForSeconds: s.retryForSeconds,
    editable,
  };
}

/** Input from a page merged over what is saved: a secret left out is kept. */
export function mergeSettings(saved: StoredSettings, input: SettingsInput): StoredSettings {
  return {
    repository: input.repository.trim(),
    s3Endpoint: input.s3Endpoint.trim(),
    s3Region: input.s3Region.trim(),
    s3AccessKeyId: input.s3AccessKeyId.trim(),
    s3SecretAccessKey: input.s3SecretAccessKey ?? saved.s3SecretAccessKey,
    redisUrl: input.redisUrl.trim(),
    redisPassword: input.redisPassword ?? saved.redisPassword,
    uploadConcurrency: input.uploadConcurrency,
    filesCache: input.filesCache ?? saved.filesCache,
    retryForSeconds: input.retryForSeconds ?? saved.retryForSeconds,
  };
}

/** The engine's view of settings: repository, Redis URL with its password, S3 options. */
export function engineOptions(s: StoredSettings): {
  repository: string;
  redisUrl: string | undefined;
  s3: S3Options;
} {
  let redisUrl: string | undefined = s.redisUrl || undefined;
  if (redisUrl && s.redisPassword)
    redisUrl = withRedisCredentials(parseRedisSetting(redisUrl, 'the Redis URL in Settings'), {
      password: s.redisPassword,
    });
  const s3: S3Options = {};
  if (s.s3Endpoint) s3.endpoint = s.s3Endpoint;
  if (s.s3Region) s3.region = s.s3Region;
  if (s.s3AccessKeyId && s.s3SecretAccessKey)
    s3.credentials = { accessKeyId: s.s3AccessKeyId, secretAccessKey: s.s3SecretAccessKey };
  s3.concurrency = s.uploadConcurrency;
  s3.retryForMs = s.retryForSeconds * 1000;
  return { repository: s.repository || defaultRepository(), redisUrl, s3 };
}

/** Read-only settings from the environment and flags (browser mode, the command line). */
export function environmentSettings(
  repository: string,
  redisUrl: string | undefined,
): SettingsStore {
  const settings: StoredSettings = {
    ...DEFAULT_SETTINGS,
    repository,
    redisUrl: redisUrl ? stripPassword(redisUrl) : '',
    redisPassword: redisUrl ? redisPassword(parseRedisSetting(redisUrl)) : '',
    s3Endpoint: process.env['AWS_ENDPOINT_URL_S3'] ?? process.env['AWS_ENDPOINT_URL'] ?? '',
    s3Region: process.env['AWS_REGION'] ?? process.env['AWS_DEFAULT_REGION'] ?? '',
    s3AccessKeyId: process.env['AWS_ACCESS_KEY_ID'] ?? '',
    s3SecretAccessKey: process.env['AWS_SECRET_ACCESS_KEY'] ?? '',
  };
  return {
    editable: false,
    load: async () => settings,
    save: async () => {
      throw new Error(
        'settings come from the environment here (TV_REPO, TV_REDIS_URL, AWS_*): change them there and restart',
      );
    },
  };
}

function stripPassword(url: string): string {
  try {
    return withRedisCredentials(parseRedisSetting(url), { username: '', password: '' });
  } catch {
    return url;
  }
}
