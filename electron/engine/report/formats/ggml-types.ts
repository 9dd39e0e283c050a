/**
 * The ggml element types a GGUF tensor may have, by the id the file stores: each with its name,
 * the number of elements in one block and the bytes one block takes. A tensor's byte size is
 * (elements / blockSize) * typeSize; its first dimension is a whole number of blocks.
 * Ids 4, 5 and 31-33, 36-38 were types later removed from ggml; files no longer use them.
 */
export interface GgmlType {
  name: string;
  blockSize: number;
  typeSize: number;
}

const QK_K = 256;

const TYPES: Record<number, GgmlType> = {};
const define = (id: number, name: string, blockSize: number, typeSize: number) => {
  TYPES[id] = { name, blockSize, typeSize };
};

define(0, 'F32', 1, 4);
define(1, 'F16', 1, 2);
define(2, 'Q4_0', 32, 2 + 16);
define(3, 'Q4_1', 32, 2 + 2 + 16);
define(6, 'Q5_0', 32, 2 + 4 + 16);
define(7, 'Q5_1', 32, 2 + 2 + 4 + 16);
define(8, 'Q8_0', 32, 2 + 32);
define(9, 'Q8_1', 32, 4 + 4 + 32);
define(10, 'Q2_K', QK_K, 2 + 2 + QK_K / 16 + QK_K / 4);
define(11, 'Q3_K', QK_K, 2 + QK_K / 4 + QK_K / 8 + 12);
define(12, 'Q4_K', QK_K, 2 + 2 + QK_K / 2 + 12);
define(13, 'Q5_K', QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12);
define(14, 'Q6_K', QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16);
define(15, 'Q8_K', QK_K, 4 + QK_K + QK_K / 8);
define(16, 'IQ2_XXS', QK_K, 2 + QK_K / 4);
define(17, 'IQ2_XS', QK_K, 2 + QK_K / 4 + QK_K / 32);
define(18, 'IQ3_XXS', QK_K, 2 + QK_K / 4 + QK_K / 8);
define(19, 'IQ1_S', QK_K, 2 + QK_K / 8 + QK_K / 16);
define(20, 'IQ4_NL', 32, 2 + 16);
define(21, 'IQ3_S', QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4);
define(22, 'IQ2_S', QK_K, 2 + QK_K / 4 + QK_K / 16);
define(23, 'IQ4_XS', QK_K, 2 + 2 + QK_K / 2 + QK_K / 64);
define(24, 'I8', 1, 1);
define(25, 'I16', 1, 2);
define(26, 'I32', 1, 4);
define(27, 'I64', 1, 8);
define(28, 'F64', 1, 8);
define(29, 'IQ1_M', QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32);
define(30, 'BF16', 1, 2);
define(34, 'TQ1_0', QK_K, 2 + 4 * 13);
define(35, 'TQ2_0', QK_K, 2 + 64);
define(39, 'MXFP4', 32, 1 + 16);
define(40, 'NVFP4', 64, 4 + 32);
define(41, 'Q1_0', 128, 2 + 16);
define(42, 'Q2_0', 64, 2 + 16);

export const ggmlType = (id: number): GgmlType | undefined => TYPES[id];
