/** Sizes for people: binary units (KiB, MiB, GiB), two or three significant digits. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** A dedup ratio: "10.96x", "2081x". */
export function formatRatio(ratio: number): string {
  return `${ratio.toFixed(ratio >= 100 ? 0 : 2)}x`;
}

/** A model format as people name it: "GGUF", "PyTorch checkpoint". */
export function formatName(format: 'safetensors' | 'gguf' | 'onnx' | 'pytorch'): string {
  return { safetensors: 'safetensors', gguf: 'GGUF', onnx: 'ONNX', pytorch: 'PyTorch checkpoint' }[
    format
  ];
}

/**
 * How a tensor changed, in words: "retyped F16 → Q8_0", "reshaped [4096, 32000] → [4096, 32001]",
 * "modified" (new bytes), or its status.
 */
export function tensorChange(t: {
  status: string;
  dtype: string;
  shape: number[];
  changes?: string[];
  before?: { dtype: string; shape: number[] };
}): string {
  const parts: string[] = [];
  if (t.changes?.includes('retyped')) parts.push(`retyped ${t.before?.dtype} → ${t.dtype}`);
  if (t.changes?.includes('reshaped'))
    parts.push(`reshaped [${t.before?.shape.join(', ')}] → [${t.shape.join(', ')}]`);
  return parts.length > 0 ? parts.join(', ') : t.status;
}
