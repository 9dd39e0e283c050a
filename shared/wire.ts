import type { EventName, Events } from './contract';

/** Messages of the browser-mode WebSocket transport (the same contract as Electron IPC). */
export interface WireRequest {
  id: number;
  method: string;
  args: unknown[];
}

export type WireResponse = { id: number; result: unknown } | { id: number; error: string };

export interface WireEvent<E extends EventName = EventName> {
  event: E;
  payload: Events[E];
}

/** What the page sees besides the calls: events, and (desktop only) the path of a dropped file. */
export interface Bridge {
  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void;
  /** The local path of a dropped or picked file; desktop only. */
  pathForFile?(file: File): string;
  /** The system's folder picker (a restore's destination); null when cancelled. Desktop only. */
  chooseFolder?(): Promise<string | null>;
}

/** The IPC channel of the desktop's folder picker (not an engine call: the shell answers it). */
export const CHOOSE_FOLDER_CHANNEL = 'tv:dialog:chooseFolder';
