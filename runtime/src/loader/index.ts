export * from './load-queue';
export * from './spi-client';
