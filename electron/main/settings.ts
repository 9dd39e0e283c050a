import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { app, safeStorage } from 'electron';
import { DEFAULT_SETTINGS, type SettingsStore, type StoredSettings } from '../engine/settings';

interface OnDisk extends Omit<StoredSettings, 's3SecretAccessKey' | 'redisPassword'> {
  /** Secrets encrypted by the operating system's keychain (safeStorage), base64. */
  secrets: { s3SecretAccessKey?: string; redisPassword?: string };
}

/**
 * The desktop app's settings: one JSON file in the user-data folder; secrets encrypted with
 * Electron's safeStorage, never written in plain text, never sent to the window.
 */
export class DesktopSettings implements SettingsStore {
  readonly editable = true;
  private readonly file = join(app.getPath('userData'), 'settings.json');

  async load(): Promise<StoredSettings> {
    let disk: Partial<OnDisk>;
    try {
      disk = JSON.parse(await readFile(this.file, 'utf8')) as Partial<OnDisk>;
    } catch {
      return { ...DEFAULT_SETTINGS };
    }
    const decrypt = (value: string | undefined) => {
      if (!value) return '';
      try {
        return safeStorage.decryptString(Buffer.from(value, 'base64'));
      } catch {
        return ''; // encrypted on another machine or account: ask for it again
      }
    };
    const { secrets, ...plain } = disk;
    return {
      ...DEFAULT_SETTINGS,
      ...plain,
      s3SecretAccessKey: decrypt(secrets?.s3SecretAccessKey),
      redisPassword: decrypt(secrets?.redisPassword),
    };
  }

  async save(settings: StoredSettings): Promise<void> {
    const { s3SecretAccessKey, redisPassword, ...plain } = settings;
    const hasSecrets = s3SecretAccessKey !== '' || redisPassword !== '';
    if (hasSecrets && !safeStorage.isEncryptionAvailable()) {
      throw new Error(
        'cannot store secrets: the system keychain is not available; use the AWS credential chain (profiles, environment) instead',
      );
    }
    const encrypt = (value: string) =>
      value ? safeStorage.encryptString(value).toString('base64') : undefined;
    const disk: OnDisk = {
      ...plain,
      secrets: {
        s3SecretAccessKey: encrypt(s3SecretAccessKey),
        redisPassword: encrypt(redisPassword),
      },
    };
    const temp = `${this.file}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(temp, JSON.stringify(disk, null, 2), { mode: 0o600 });
    await rename(temp, this.file);
  }
}
