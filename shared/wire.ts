/** Messages of the browser-mode WebSocket transport (the same contract as Electron IPC). */
export interface WireRequest {
  id: number;
  method: string;
  args: unknown[];
}

export type WireResponse = { id: number; result: unknown } | { id: number; error: string };
