import { create } from 'zustand';
import type { AppInfo } from '../../shared/contract';
import { api } from './api';

interface AppState {
  info: AppInfo | undefined;
  error: string | undefined;
  load(): Promise<void>;
}

export const useAppStore = create<AppState>((set) => ({
  info: undefined,
  error: undefined,
  async load() {
    try {
      set({ info: await api.appInfo(), error: undefined });
    } catch (err) {
      set({ error: err instanceof Error ? err.message : String(err) });
    }
  },
}));
