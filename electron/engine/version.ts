export const PRODUCT = 'TensorVault';
export const VERSION = '0.1.0';
