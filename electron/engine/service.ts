import type { Api, AppInfo } from '../../shared/contract';
import { PRODUCT, VERSION } from './version';

export interface ServiceOptions {
  /** Repository location as given by the configuration, for display. */
  repository: string;
  mode: AppInfo['mode'];
}

/** The engine's front door: every front end (Electron IPC, `tv`, browser mode) calls this. */
export class Service implements Api {
  constructor(private readonly options: ServiceOptions) {}

  async appInfo(): Promise<AppInfo> {
    return {
      product: PRODUCT,
      version: VERSION,
      repository: this.options.repository,
      mode: this.options.mode,
    };
  }
}
